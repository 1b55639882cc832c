//! [`FakeExecutor`]: scripted remediation actions (outcomes, failures, delays), checked like a real executor's
//! (declared action ids and argument names), with every action that ran recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;

use super::script::{Script, scripted_methods};
use crate::error::AdapterError;
use crate::executor::{
    ActionDescription, ActionOutcome, ActionRequest, ActionStatus, Captured, Executor,
};

/// A scriptable [`Executor`].
///
/// Actions are declared with [`with_action`](Self::with_action) (an id and its argument names); a request for
/// another id, or whose arguments are not exactly the declared names, is refused before anything is recorded, as a
/// real executor refuses before any I/O. An accepted execute answers, in this order: the next queued answer
/// ([`push_outcome`](Self::push_outcome), [`push_error`](Self::push_error)), else the sticky failure
/// ([`set_failure`](Self::set_failure)), else a completed outcome whose output is `"fake: <action id> done"`. It is
/// delayed by [`set_delay`](Self::set_delay) on the tokio clock; a delay at or past the request's deadline is a
/// [`Timeout`](crate::error::ErrorKind::Timeout) at the deadline. Every accepted request is recorded
/// ([`calls`](Self::calls)).
#[derive(Debug, Default)]
pub struct FakeExecutor {
    actions: BTreeMap<String, BTreeSet<String>>,
    script: Script<ActionOutcome, ActionRequest>,
}

impl FakeExecutor {
    /// An executor with no action declared (every request is refused until some are).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the action `id` taking exactly the arguments `argument_names`.
    #[must_use]
    pub fn with_action(mut self, id: &str, argument_names: &[&str]) -> Self {
        self.actions.insert(
            id.to_owned(),
            argument_names
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        );
        self
    }

    /// Queues one outcome, returned by the next accepted execute that finds it first in the queue.
    pub fn push_outcome(&self, outcome: ActionOutcome) {
        self.script.push(Ok(outcome));
    }

    fn check(&self, request: &ActionRequest) -> Result<(), AdapterError> {
        let declared = self.actions.get(&request.action_id).ok_or_else(|| {
            AdapterError::refused(format!(
                "action {:?} is not declared for this executor",
                request.action_id
            ))
        })?;
        if let Some(missing) = declared
            .iter()
            .find(|name| !request.arguments.contains_key(*name))
        {
            return Err(AdapterError::refused(format!(
                "argument {missing:?} is missing"
            )));
        }
        if let Some(unexpected) = request
            .arguments
            .keys()
            .find(|name| !declared.contains(*name))
        {
            return Err(AdapterError::refused(format!(
                "argument {unexpected:?} is not declared by the action"
            )));
        }
        Ok(())
    }
}

scripted_methods!(FakeExecutor, "accepted execute", ActionRequest, "Every accepted request so far, in order.", delay: "Delays every accepted execute by `delay` (tokio clock), bounded by the request's deadline.");

/// A completed outcome with `output` as the target's answer.
#[must_use]
pub fn completed_outcome(output: &str, duration: Duration) -> ActionOutcome {
    ActionOutcome {
        status: ActionStatus::Completed,
        detail: "fake: completed".to_owned(),
        output: Captured::from_bytes(output.as_bytes(), output.len() as u64, usize::MAX, &[]),
        error_output: Captured::empty(),
        duration,
    }
}

/// A failed outcome with `detail` as the target's one-line answer.
#[must_use]
pub fn failed_outcome(detail: &str) -> ActionOutcome {
    ActionOutcome {
        status: ActionStatus::Failed,
        detail: detail.to_owned(),
        output: Captured::empty(),
        error_output: Captured::empty(),
        duration: Duration::ZERO,
    }
}

#[async_trait]
impl Executor for FakeExecutor {
    fn action_ids(&self) -> Vec<String> {
        self.actions.keys().cloned().collect()
    }

    fn describe(&self, request: &ActionRequest) -> Result<ActionDescription, AdapterError> {
        self.check(request)?;
        let arguments: Vec<String> = request
            .arguments
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        Ok(ActionDescription {
            action_id: request.action_id.clone(),
            summary: format!("fake: {} {}", request.action_id, arguments.join(" "))
                .trim_end()
                .to_owned(),
        })
    }

    async fn execute(&self, request: &ActionRequest) -> Result<ActionOutcome, AdapterError> {
        self.check(request)?;
        let turn = self.script.turn(request.clone());
        if turn.delay >= request.deadline {
            tokio::time::sleep(request.deadline).await;
            return Err(AdapterError::timeout(request.deadline));
        }
        super::pause(turn.delay).await;
        turn.answer.unwrap_or_else(|| {
            Ok(completed_outcome(
                &format!("fake: {} done", request.action_id),
                turn.delay,
            ))
        })
    }
}
