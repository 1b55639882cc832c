//! The shared port contract suites: one module per port, each a set of async cases that must hold for every
//! implementation of the port, plus a `check_all` that runs them all on fresh instances.
//!
//! A suite takes the port as `Arc<dyn Port>` and a scenario: a small trait the caller implements to put the
//! implementation (or the stub server behind it) into the situation a case needs. Fakes arrange through their
//! scripting API; real adapters arrange by mounting wiremock responses or by switching a local fake server's mode.

pub(crate) mod ci_provider;
pub(crate) mod context_source;
pub(crate) mod copilot;
pub(crate) mod executor;
pub(crate) mod notifier;
pub(crate) mod planner;
pub(crate) mod signal_source;
pub(crate) mod store;
pub(crate) mod store_claims;
pub(crate) mod test_runner;

use std::future::Future;
use std::time::Duration;

use fixloop_adapters::PlanRequest;
use fixloop_contract::Signal;
use fixloop_contract::chrono::{DateTime, TimeZone, Utc};
use fixloop_core::{IncidentId, PlanContext, PlanId};

/// Every await of a suite is bounded by this.
pub(crate) const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test when it takes longer than [`CASE_TIMEOUT`].
pub(crate) async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(CASE_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {CASE_TIMEOUT:?}"),
    }
}

/// A fixed instant for deterministic plans.
pub(crate) fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 9, 30, 0)
        .single()
        .expect("a valid fixed date")
}

/// A first-attempt plan request for an incident on the service at `base_url`.
pub(crate) fn plan_request(base_url: &str) -> PlanRequest {
    let top_error = "POST /checkout -> 500 payment provider timeout".to_owned();
    PlanRequest {
        context: PlanContext {
            incident_id: IncidentId::new("inc-0001"),
            service: "demo-checkout".to_owned(),
            base_url: base_url.to_owned(),
            signal: Signal {
                error_rate_5m: 35.0,
                p95_latency_ms_5m: 1800.0,
                top_error: Some(top_error.clone()),
            },
            title: "Checkout error rate above 5%".to_owned(),
            ..crate::shop::shop_context(base_url)
        },
        attempt: 1,
        previous_violations: Vec::new(),
        plan_id: PlanId::new("plan-0001"),
        now: fixed_now(),
    }
}
