//! Deterministic, scriptable fakes of every port, for the server tests, the conformance self-check and the port
//! contract suites.
//!
//! Every fake queues canned answers (used first, in order), falls back to a sensible default when its queue is
//! empty, can inject failures (one-shot or sticky) and delays (on the tokio clock, so paused-time tests stay
//! instant), and records every call for assertions.
//!
//! | fake | default answer |
//! | --- | --- |
//! | [`FakeSignalSource`] | a sticky reading, [`healthy_reading`] until changed |
//! | [`FakePlanner`] | the core's rule plan for the request |
//! | [`FakeTestRunner`] | the core's evaluator applied to [`DemoModel`]'s simulated responses |
//! | [`FakeCopilot`] | the [`GroundedCopilot`](crate::GroundedCopilot)'s answer |
//! | [`FakeContextSource`] | sticky findings, empty until changed |
//! | [`FakeLookup`] | `{"lookup": "<tool name>"}` for every copilot look-up |
//! | [`FakeStore`] | an in-memory journal shared by its clones (writes can be made to fail) |
//! | [`FakeExecutor`] | a completed outcome for every declared action ([`completed_outcome`]) |
//! | [`FakeNotifier`] | every notification delivered (and recorded) |
//! | [`FakeCiProvider`] | every rerun accepted (201, and recorded) |
//! | [`FakeCiRefiner`] | the classifier's own answer, as a proposal |
//! | [`FakeRemediationChooser`] | the first candidate (the rules' own pick) |

mod chooser;
mod ci_provider;
mod ci_refiner;
mod context;
mod copilot;
mod demo;
mod executor;
mod lookup;
mod notifier;
mod planner;
mod runner;
mod script;
mod signal;
mod store;

use std::time::Duration;

pub use chooser::FakeRemediationChooser;
pub use ci_provider::FakeCiProvider;
pub use ci_refiner::FakeCiRefiner;
pub use context::{FakeContextSource, incident_findings};
pub use copilot::FakeCopilot;
pub use demo::DemoModel;
pub use executor::{FakeExecutor, completed_outcome, failed_outcome};
pub use lookup::FakeLookup;
pub use notifier::FakeNotifier;
pub use planner::{FakePlanner, PlanDefect};
pub use runner::{FakeTestRunner, RunnerCall, VerdictFn};
pub use signal::{FakeSignalSource, erroring_reading, healthy_reading};
pub use store::FakeStore;

/// Waits `delay` on the tokio clock (nothing when zero).
async fn pause(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}
