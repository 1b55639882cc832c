//! [`FakeCiProvider`]: scripted rerun answers (failures, delays), with every rerun request recorded.

use async_trait::async_trait;

use super::pause;
use super::script::{Script, scripted_methods};
use crate::ci_provider::{CiProvider, RerunReceipt, RerunRequest};
use crate::error::AdapterError;

/// A scriptable [`CiProvider`].
///
/// A rerun answers, in this order: the next queued answer ([`push_receipt`](Self::push_receipt),
/// [`push_error`](Self::push_error)), else the sticky failure ([`set_failure`](Self::set_failure)), else an
/// accepted rerun with status 201 and, when the request names a job, a new job id (`<job id>-rerun-<n>`). Every
/// rerun is delayed by [`set_delay`](Self::set_delay) on the tokio clock and recorded ([`calls`](Self::calls)).
#[derive(Debug)]
pub struct FakeCiProvider {
    script: Script<RerunReceipt, RerunRequest>,
}

impl Default for FakeCiProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCiProvider {
    /// A provider that accepts every rerun until told otherwise.
    #[must_use]
    pub fn new() -> Self {
        Self {
            script: Script::new(()),
        }
    }

    /// Queues one answer for the next rerun.
    pub fn push_receipt(&self, receipt: RerunReceipt) {
        self.script.push(Ok(receipt));
    }
}

scripted_methods!(
    FakeCiProvider,
    "rerun",
    RerunRequest,
    "Every rerun it was asked for, in order, accepted or not."
);

#[async_trait]
impl CiProvider for FakeCiProvider {
    fn provider(&self) -> &'static str {
        "fake"
    }

    async fn rerun_failed(&self, request: &RerunRequest) -> Result<RerunReceipt, AdapterError> {
        let turn = self.script.turn(request.clone());
        pause(turn.delay).await;
        let count = self.script.calls().len();
        turn.answer.unwrap_or_else(|| {
            Ok(RerunReceipt {
                status: 201,
                new_job_id: request
                    .job_id
                    .as_ref()
                    .map(|job| format!("{job}-rerun-{count}")),
                web_url: None,
            })
        })
    }
}
