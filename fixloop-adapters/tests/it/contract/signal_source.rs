//! Contract of [`SignalSource`]: healthy traffic reads low, erroring traffic reads high, a slow source is a
//! timeout and a failing one is unavailable; every read returns within a bound.
//!
//! A source that measures the service itself (the synthetic probes) has no telemetry backend that can be slow or
//! down: a slow or failing service is a hot reading, not a failed read. It runs [`check_traffic`] only.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{ErrorKind, SignalSource};

use super::bounded;

/// The window every case reads.
pub(crate) const WINDOW: Duration = Duration::from_secs(300);

/// What the watched service is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Traffic {
    /// Steady traffic, at most 1% errors.
    Healthy,
    /// Steady traffic, at least 20% server errors.
    Erroring,
    /// The source answers later than the adapter's timeout.
    Slow,
    /// The source fails (5xx or connection refused).
    Down,
}

/// Puts a signal source into a situation.
#[async_trait]
pub(crate) trait SignalScenario: Send + Sync {
    /// Arranges for the next `read` to observe `traffic`; a source that needs a baseline (the scrape source) is
    /// primed here.
    async fn arrange(&self, traffic: Traffic);
}

/// Runs every case, each on a fresh `(source, scenario)` from `make`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn SignalSource>, Box<dyn SignalScenario>)>,
{
    let (source, scenario) = make().await;
    healthy_traffic_reads_a_low_error_rate(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    erroring_traffic_reads_a_high_error_rate(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    slow_source_is_a_timeout(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    failing_source_is_unavailable(source, scenario.as_ref()).await;
}

/// Runs the traffic cases (healthy, erroring), each on a fresh `(source, scenario)` from `make`.
pub(crate) async fn check_traffic<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn SignalSource>, Box<dyn SignalScenario>)>,
{
    let (source, scenario) = make().await;
    healthy_traffic_reads_a_low_error_rate(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    erroring_traffic_reads_a_high_error_rate(source, scenario.as_ref()).await;
}

/// Healthy traffic: an error rate at most 5%, requests counted, a p95.
pub(crate) async fn healthy_traffic_reads_a_low_error_rate(
    source: Arc<dyn SignalSource>,
    scenario: &dyn SignalScenario,
) {
    scenario.arrange(Traffic::Healthy).await;
    let reading = bounded("read", source.read(WINDOW))
        .await
        .unwrap_or_else(|error| panic!("healthy read failed: {}", error.detail()));
    let error_rate = reading.error_rate.expect("an error rate with traffic");
    assert!((0.0..=0.05).contains(&error_rate), "{reading:?}");
    assert!(reading.requests > 0, "{reading:?}");
    let p95 = reading.p95_latency_ms.expect("a p95 with traffic");
    assert!(p95.is_finite() && p95 >= 0.0, "{reading:?}");
}

/// Erroring traffic: an error rate of at least 10%, within `[0, 1]`.
pub(crate) async fn erroring_traffic_reads_a_high_error_rate(
    source: Arc<dyn SignalSource>,
    scenario: &dyn SignalScenario,
) {
    scenario.arrange(Traffic::Erroring).await;
    let reading = bounded("read", source.read(WINDOW))
        .await
        .unwrap_or_else(|error| panic!("erroring read failed: {}", error.detail()));
    let error_rate = reading.error_rate.expect("an error rate with traffic");
    assert!((0.10..=1.0).contains(&error_rate), "{reading:?}");
    assert!(reading.requests > 0, "{reading:?}");
}

/// A source slower than the adapter's timeout fails with [`ErrorKind::Timeout`].
pub(crate) async fn slow_source_is_a_timeout(
    source: Arc<dyn SignalSource>,
    scenario: &dyn SignalScenario,
) {
    scenario.arrange(Traffic::Slow).await;
    let error = bounded("read", source.read(WINDOW))
        .await
        .expect_err("a slow source must fail");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
}

/// A failing source fails with [`ErrorKind::Unavailable`].
pub(crate) async fn failing_source_is_unavailable(
    source: Arc<dyn SignalSource>,
    scenario: &dyn SignalScenario,
) {
    scenario.arrange(Traffic::Down).await;
    let error = bounded("read", source.read(WINDOW))
        .await
        .expect_err("a failing source must fail");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
}
