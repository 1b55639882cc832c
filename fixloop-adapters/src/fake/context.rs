//! [`FakeContextSource`]: scripted incident context (findings, failures, delays), with every query recorded.

use async_trait::async_trait;
use fixloop_contract::Link;

use super::pause;
use super::script::{Script, scripted_methods};
use crate::error::AdapterError;
use crate::ports::{ContextFindings, ContextQuery, ContextSource};

/// A scriptable [`ContextSource`].
///
/// A gather answers, in this order: the next queued answer ([`push_findings`](Self::push_findings),
/// [`push_error`](Self::push_error)), else the sticky failure ([`set_failure`](Self::set_failure)), else the sticky
/// findings ([`set_findings`](Self::set_findings); empty findings until changed). Every gather is delayed by
/// [`set_delay`](Self::set_delay) on the tokio clock and recorded ([`calls`](Self::calls)), whatever it answers.
#[derive(Debug)]
pub struct FakeContextSource {
    /// The extra state is the sticky findings returned when the queue is empty and no failure is set.
    script: Script<ContextFindings, ContextQuery, ContextFindings>,
}

impl FakeContextSource {
    /// A source that finds nothing (empty [`ContextFindings`]) until told otherwise.
    #[must_use]
    pub fn new() -> Self {
        Self::with_findings(ContextFindings::default())
    }

    /// A source whose sticky findings are `findings`.
    #[must_use]
    pub fn with_findings(findings: ContextFindings) -> Self {
        Self {
            script: Script::new(findings),
        }
    }

    /// Replaces the sticky findings returned when the queue is empty.
    pub fn set_findings(&self, findings: ContextFindings) {
        self.script.update_extra(|sticky| *sticky = findings);
    }

    /// Queues one set of findings, returned by the next gather that finds it first in the queue.
    pub fn push_findings(&self, findings: ContextFindings) {
        self.script.push(Ok(findings));
    }
}

scripted_methods!(
    FakeContextSource,
    "gather",
    ContextQuery,
    "The query of every gather so far, in order."
);

impl Default for FakeContextSource {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ContextSource for FakeContextSource {
    async fn gather(&self, query: &ContextQuery) -> Result<ContextFindings, AdapterError> {
        let turn = self.script.turn(query.clone());
        let answer = turn.answer.unwrap_or(Ok(turn.extra));
        pause(turn.delay).await;
        answer
    }
}

/// Findings of an incident: a failing checkout as top error, one evidence link, two notes.
#[must_use]
pub fn incident_findings() -> ContextFindings {
    ContextFindings {
        top_error: Some("POST /checkout -> 500 payment provider timeout".to_owned()),
        evidence_links: vec![Link {
            label: "Fake error logs".to_owned(),
            url: "http://fake.invalid/logs?query=status%3Aerror".to_owned(),
        }],
        notes: vec![
            "logs: POST /checkout -> 500 payment provider timeout".to_owned(),
            "monitors: Checkout error rate is high, Alert".to_owned(),
        ],
    }
}
