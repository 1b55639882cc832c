//! Periodic submission of the demo service's metrics to Datadog (when `DD_API_KEY` is set): best effort, each call
//! bounded by a timeout, failures logged and never fatal.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use fixloop_adapters::datadog::{DatadogMetricsSubmitter, ServiceSample};

use super::DemoState;
use super::metrics::{LATENCY_BUCKETS, MetricsSnapshot, Source};

/// Submits one [`ServiceSample`] per `interval` (user traffic since the previous one) until `shutdown` resolves.
pub async fn submit_periodically(
    submitter: DatadogMetricsSubmitter,
    state: DemoState,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut previous = state.metrics().snapshot();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let current = state.metrics().snapshot();
        let sample = sample_between(&previous, &current, interval);
        previous = current;
        let submit = submitter.submit(&sample);
        tokio::select! {
            () = &mut shutdown => break,
            result = tokio::time::timeout(Duration::from_secs(10), submit) => match result {
                Ok(Ok(())) => tracing::debug!(requests = sample.requests, errors = sample.errors, "metrics submitted to datadog"),
                Ok(Err(error)) => tracing::warn!(%error, "datadog metrics submission failed"),
                Err(_) => tracing::warn!("datadog metrics submission timed out"),
            },
        }
    }
}

/// The user traffic between two snapshots: requests, 5xx errors and an estimated p95 (bucket upper bound, in ms).
#[must_use]
pub fn sample_between(
    before: &MetricsSnapshot,
    after: &MetricsSnapshot,
    interval: Duration,
) -> ServiceSample {
    let mut requests = 0;
    let mut errors = 0;
    for (key, count) in &after.requests {
        if key.3 != Source::User {
            continue;
        }
        let increase = count.saturating_sub(before.requests.get(key).copied().unwrap_or(0));
        requests += increase;
        if key.2 >= 500 {
            errors += increase;
        }
    }
    let mut buckets = [0_u64; LATENCY_BUCKETS.len()];
    let mut total = 0;
    for (key, histogram) in &after.latency {
        if key.2 != Source::User {
            continue;
        }
        let earlier = before.latency.get(key);
        for (index, count) in histogram.buckets.iter().enumerate() {
            let previous = earlier.map_or(0, |earlier| earlier.buckets[index]);
            buckets[index] += count.saturating_sub(previous);
        }
        total += histogram
            .count
            .saturating_sub(earlier.map_or(0, |earlier| earlier.count));
    }
    let p95_latency_ms = (total > 0).then(|| {
        let rank = (total * 95).div_ceil(100);
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(buckets) {
            cumulative += count;
            if cumulative >= rank {
                return bound * 1000.0;
            }
        }
        LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1] * 1000.0
    });
    ServiceSample {
        at: Utc::now(),
        interval,
        requests,
        errors,
        p95_latency_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_app::metrics::{DemoMetrics, RequestRecord};

    fn record(metrics: &DemoMetrics, status: u16, source: Source, millis: u64) {
        metrics.record(RequestRecord {
            route: "/checkout".to_owned(),
            method: "POST".to_owned(),
            status,
            source,
            duration: Duration::from_millis(millis),
            error: None,
        });
    }

    #[test]
    fn sample_counts_user_traffic_since_the_previous_snapshot() {
        let metrics = DemoMetrics::default();
        record(&metrics, 200, Source::User, 3);
        let before = metrics.snapshot();
        for _ in 0..18 {
            record(&metrics, 200, Source::User, 3);
        }
        record(&metrics, 500, Source::User, 300);
        record(&metrics, 500, Source::User, 300);
        record(&metrics, 500, Source::Fixloop, 3);
        let sample = sample_between(&before, &metrics.snapshot(), Duration::from_secs(10));
        assert_eq!(sample.requests, 20);
        assert_eq!(sample.errors, 2);
        assert_eq!(
            sample.p95_latency_ms,
            Some(500.0),
            "the 19th of 20 falls in the 0.5 s bucket"
        );
        let empty = sample_between(&before, &before, Duration::from_secs(10));
        assert_eq!((empty.requests, empty.p95_latency_ms), (0, None));
    }
}
