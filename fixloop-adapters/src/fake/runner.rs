//! [`FakeTestRunner`]: scripted test runs with real verdicts from the core's evaluator.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use fixloop_contract::{Plan, PlanItem, TestStatus};
use fixloop_core::{Criteria, RunId, ValidatedPlan};
use tokio::sync::watch;

use super::script::{Script, scripted_methods};
use super::{DemoModel, pause};
use crate::error::AdapterError;
use crate::ports::{ProgressModel, ProgressSink, RunnerExpectations, TestProgress, TestRunner};

/// A verdict function: the terminal status and details of one test.
pub type VerdictFn =
    Arc<dyn Fn(&PlanItem, &Criteria) -> (TestStatus, Option<String>) + Send + Sync>;

/// One recorded call of [`FakeTestRunner::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerCall {
    /// The run id passed.
    pub run_id: RunId,
    /// The plan run.
    pub plan: Plan,
}

/// A scriptable [`TestRunner`].
///
/// A run reports RUNNING for every test (in priority order), waits while the runner is [held](Self::hold), then
/// reports each test's verdict after the per-test delay. Verdicts come, in order of precedence, from the per-test
/// table ([`set_result`](Self::set_result)), then from the verdict function, which by default applies the core's
/// evaluator to [`DemoModel`]'s simulated response.
pub struct FakeTestRunner {
    verdict: VerdictFn,
    model: Arc<DemoModel>,
    /// A run's scripted answer is only ever a failure of the run as a whole; the extra state is the per-test
    /// verdict table, and the delay applies to each verdict.
    script: Script<(), RunnerCall, ForcedVerdicts>,
    held: watch::Sender<bool>,
}

/// The verdicts forced with [`FakeTestRunner::set_result`], by test id.
type ForcedVerdicts = HashMap<String, (TestStatus, Option<String>)>;

impl FakeTestRunner {
    /// A runner against a healthy [`DemoModel`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_model(Arc::new(DemoModel::new()))
    }

    /// A runner whose verdicts come from `model`'s responses (flip its bug to make checkout fail).
    #[must_use]
    pub fn with_model(model: Arc<DemoModel>) -> Self {
        let simulated = Arc::clone(&model);
        let verdict: VerdictFn =
            Arc::new(
                move |item, criteria| match simulated.respond(&item.target) {
                    Ok(observation) => {
                        let verdict = criteria.evaluate(&observation);
                        let status = if verdict.passed {
                            TestStatus::Pass
                        } else {
                            TestStatus::Fail
                        };
                        (status, Some(verdict.explanation))
                    }
                    Err(failure) => (TestStatus::Fail, Some(failure)),
                },
            );
        Self {
            verdict,
            model,
            script: Script::default(),
            held: watch::Sender::new(false),
        }
    }

    /// A runner whose verdicts come from `verdict`.
    #[must_use]
    pub fn with_verdict(
        verdict: impl Fn(&PlanItem, &Criteria) -> (TestStatus, Option<String>) + Send + Sync + 'static,
    ) -> Self {
        Self {
            verdict: Arc::new(verdict),
            ..Self::new()
        }
    }

    /// The simulated service (meaningful for runners built with [`new`](Self::new) or
    /// [`with_model`](Self::with_model)).
    #[must_use]
    pub fn model(&self) -> &Arc<DemoModel> {
        &self.model
    }

    /// Forces the verdict of the test `test_id` (overrides the verdict function).
    pub fn set_result(&self, test_id: &str, status: TestStatus, details: Option<&str>) {
        self.script.update_extra(|results| {
            results.insert(test_id.to_owned(), (status, details.map(str::to_owned)))
        });
    }

    /// Forgets every verdict forced with [`set_result`](Self::set_result).
    pub fn clear_results(&self) {
        self.script.update_extra(HashMap::clear);
    }

    /// Holds runs after they report RUNNING, until [`release`](Self::release).
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Lets held runs (and future ones) report their verdicts.
    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

scripted_methods!(FakeTestRunner, "run", RunnerCall, "Every run so far.", delay: "Delays each test's verdict by `delay` (tokio clock).");

impl Default for FakeTestRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeTestRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTestRunner")
            .field("model", &self.model)
            .field("script", &self.script)
            .field("held", &*self.held.borrow())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TestRunner for FakeTestRunner {
    fn expectations(&self) -> RunnerExpectations {
        // One verdict after another, each after the per-test delay, and nothing else takes time (a held run is a
        // hung runner: the engine's deadline is what ends it).
        RunnerExpectations {
            max_run_duration: self.script.delay() * 5,
            progress: ProgressModel::PerTest,
        }
    }

    async fn run(
        &self,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: ProgressSink,
    ) -> Result<(), AdapterError> {
        let turn = self.script.turn(RunnerCall {
            run_id: run_id.clone(),
            plan: plan.plan().clone(),
        });
        if let Some(Err(error)) = turn.answer {
            return Err(error);
        }
        let (results, delay) = (turn.extra, turn.delay);
        for (item, _) in plan.tests() {
            send(&progress, &item.test_id, TestStatus::Running, None).await?;
        }
        let mut held = self.held.subscribe();
        held.wait_for(|held| !held)
            .await
            .map_err(|_| AdapterError::unavailable("fake: runner dropped while held"))?;
        for (item, criteria) in plan.tests() {
            pause(delay).await;
            let (status, details) = match results.get(&item.test_id) {
                Some(result) => result.clone(),
                None => (self.verdict)(item, criteria),
            };
            send(&progress, &item.test_id, status, details).await?;
        }
        Ok(())
    }
}

async fn send(
    progress: &ProgressSink,
    test_id: &str,
    status: TestStatus,
    details: Option<String>,
) -> Result<(), AdapterError> {
    progress
        .send(TestProgress {
            test_id: test_id.to_owned(),
            status,
            details,
        })
        .await
        .map_err(|_| AdapterError::unavailable("progress receiver closed"))
}
