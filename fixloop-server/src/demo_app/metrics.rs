//! The demo service's own metrics registry and its hand-written Prometheus text exposition.
//!
//! Three families, labelled by the matched route template (never the raw path, so label cardinality stays
//! bounded): `demo_http_requests_total{route,method,status,source}`,
//! `demo_http_request_duration_seconds{route,method,source}` (a histogram) and
//! `demo_http_errors_total{route,method,status,error}` (user traffic only). `source` is `fixloop` for FixLoop's
//! validation traffic (requests carrying the validation header) and `user` for everything else.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds (`+Inf` is implicit).
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Who sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Ordinary traffic (users, the traffic generator).
    User,
    /// FixLoop's validation traffic (the request carried the validation header).
    Fixloop,
}

impl Source {
    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Fixloop => "fixloop",
        }
    }
}

/// One finished request, as the middleware records it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// The matched route template (`/checkout`), or `unmatched`.
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The response status code.
    pub status: u16,
    /// Who sent it.
    pub source: Source,
    /// How long the handler took.
    pub duration: Duration,
    /// The short error label of an error response (`payment provider timeout`), if any.
    pub error: Option<String>,
}

/// A point-in-time copy of the counters, for the Datadog submitter and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// `demo_http_requests_total` by (route, method, status, source).
    pub requests: BTreeMap<(String, String, u16, Source), u64>,
    /// `demo_http_errors_total` by (route, method, status, error).
    pub errors: BTreeMap<(String, String, u16, String), u64>,
    /// Latency histograms by (route, method, source).
    pub latency: BTreeMap<(String, String, Source), Histogram>,
}

/// A cumulative latency histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Count of observations at or below each bound of [`LATENCY_BUCKETS`] (non-cumulative per bucket).
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    /// Sum of all observations, in seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(index) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// The registry: counters behind one mutex (held for a few map operations only, never across an await).
#[derive(Debug, Default)]
pub struct DemoMetrics {
    inner: Mutex<MetricsSnapshot>,
}

impl DemoMetrics {
    /// Records one finished request.
    pub fn record(&self, record: RequestRecord) {
        let seconds = record.duration.as_secs_f64();
        let mut inner = self.lock();
        *inner
            .requests
            .entry((
                record.route.clone(),
                record.method.clone(),
                record.status,
                record.source,
            ))
            .or_default() += 1;
        inner
            .latency
            .entry((record.route.clone(), record.method.clone(), record.source))
            .or_default()
            .observe(seconds);
        if record.source == Source::User
            && let Some(error) = record.error
        {
            *inner
                .errors
                .entry((record.route, record.method, record.status, error))
                .or_default() += 1;
        }
    }

    /// A copy of the counters.
    #[must_use]
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.lock().clone()
    }

    /// The Prometheus text exposition (format 0.0.4) of the counters.
    #[must_use]
    pub fn render(&self) -> String {
        render(&self.snapshot())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MetricsSnapshot> {
        // A poisoned lock only means a panic happened while counting; the counters are still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Renders a snapshot in the Prometheus text format.
#[must_use]
pub fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP demo_http_requests_total HTTP requests served by the demo service.\n");
    out.push_str("# TYPE demo_http_requests_total counter\n");
    for ((route, method, status, source), value) in &snapshot.requests {
        let _ = writeln!(
            out,
            "demo_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\",source=\"{}\"}} {value}",
            escape_label(route),
            escape_label(method),
            source.as_str(),
        );
    }
    out.push_str(
        "# HELP demo_http_request_duration_seconds Time to serve a request of the demo service.\n",
    );
    out.push_str("# TYPE demo_http_request_duration_seconds histogram\n");
    for ((route, method, source), histogram) in &snapshot.latency {
        let labels = format!(
            "route=\"{}\",method=\"{}\",source=\"{}\"",
            escape_label(route),
            escape_label(method),
            source.as_str()
        );
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "demo_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_sum{{{labels}}} {}",
            histogram.sum
        );
        let _ = writeln!(
            out,
            "demo_http_request_duration_seconds_count{{{labels}}} {}",
            histogram.count
        );
    }
    out.push_str(
        "# HELP demo_http_errors_total Error responses of the demo service to user traffic.\n",
    );
    out.push_str("# TYPE demo_http_errors_total counter\n");
    for ((route, method, status, error), value) in &snapshot.errors {
        let _ = writeln!(
            out,
            "demo_http_errors_total{{route=\"{}\",method=\"{}\",status=\"{status}\",error=\"{}\"}} {value}",
            escape_label(route),
            escape_label(method),
            escape_label(error),
        );
    }
    out
}

/// Escapes a label value as the text format requires: backslash, double quote and line feed.
#[must_use]
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(route: &str, status: u16, source: Source, millis: u64) -> RequestRecord {
        RequestRecord {
            route: route.to_owned(),
            method: "GET".to_owned(),
            status,
            source,
            duration: Duration::from_millis(millis),
            error: (status >= 400).then(|| "boom \"x\"\n".to_owned()),
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let metrics = DemoMetrics::default();
        metrics.record(record("/health", 200, Source::User, 3));
        metrics.record(record("/health", 200, Source::User, 30));
        metrics.record(record("/health", 200, Source::User, 9000));
        let text = metrics.render();
        assert!(text.contains(
            r#"demo_http_request_duration_seconds_bucket{route="/health",method="GET",source="user",le="0.005"} 1"#
        ));
        assert!(text.contains(
            r#"demo_http_request_duration_seconds_bucket{route="/health",method="GET",source="user",le="0.05"} 2"#
        ));
        assert!(text.contains(
            r#"demo_http_request_duration_seconds_bucket{route="/health",method="GET",source="user",le="5"} 2"#
        ));
        assert!(text.contains(
            r#"demo_http_request_duration_seconds_bucket{route="/health",method="GET",source="user",le="+Inf"} 3"#
        ));
        assert!(text.contains(
            r#"demo_http_request_duration_seconds_count{route="/health",method="GET",source="user"} 3"#
        ));
    }

    #[test]
    fn errors_count_user_traffic_only() {
        let metrics = DemoMetrics::default();
        metrics.record(record("/checkout", 500, Source::User, 1));
        metrics.record(record("/checkout", 500, Source::Fixloop, 1));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.errors.values().sum::<u64>(), 1);
        assert_eq!(snapshot.requests.values().sum::<u64>(), 2);
        let text = render(&snapshot);
        assert!(text.contains(r#"error="boom \"x\"\n"} 1"#), "{text}");
    }
}
