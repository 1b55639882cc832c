//! Metrics discovery: which families and labels of a service's Prometheus exposition hold its HTTP traffic.
//!
//! [`discover`] is a pure function over the exposition text (the samples from
//! [`fixloop_adapters::scrape::parse_exposition`] plus the `# TYPE` lines). It looks for:
//!
//! - the request counter: a counter, or a histogram's or summary's `_count`, whose labels include a status-like
//!   label (`code`, `status`, `status_code`, `http_response_status_code`, `http_status_code`); candidates whose
//!   status values look like HTTP codes (`503`) or classes (`5xx`) win, then server-side names over client ones
//!   (`http_client_requests_seconds_count` is the service's own outgoing calls), then names about requests, then
//!   the ones with a route label;
//! - the latency: the histogram sharing the counter's family (OpenTelemetry, Micrometer with percentile
//!   histograms), else another server histogram in seconds, else a summary (no buckets: no p95);
//! - the label names actually used for status, route (`handler`, `route`, `uri`, `path`, `http_route`, `view`,
//!   preferring one whose values start with `/` or are templated) and method.
//!
//! It handles the Prometheus Go client (`http_requests_total{code,handler,method}`),
//! prometheus-fastapi-instrumentator (`status="2xx"`), Micrometer/Spring (`http_server_requests_seconds_count`,
//! `uri`, `status`, no `_total`) and OpenTelemetry (`http_server_request_duration_seconds`,
//! `http_response_status_code`, `http_route`). Every choice carries a sentence saying where it came from.

use std::collections::{BTreeMap, BTreeSet};

use fixloop_adapters::scrape::{Sample, parse_exposition};

/// Label names that hold the HTTP status, most specific first.
const STATUS_LABELS: &[&str] = &[
    "http_response_status_code",
    "http_status_code",
    "status_code",
    "code",
    "status",
];
/// Label names that hold the route.
const ROUTE_LABELS: &[&str] = &[
    "http_route",
    "route",
    "handler",
    "uri",
    "path",
    "endpoint",
    "url_path",
    "view",
];
/// Label names that hold the method.
const METHOD_LABELS: &[&str] = &["http_request_method", "method", "http_method", "verb"];

/// What [`discover`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The request counter's sample name (`http_requests_total`, `http_server_requests_seconds_count`).
    pub requests_metric: String,
    /// The latency family, without `_bucket` (`http_request_duration_seconds`).
    pub duration_metric: String,
    /// Whether the latency family has buckets (a histogram); a summary gives no p95.
    pub duration_has_buckets: bool,
    /// The label holding the status.
    pub status_label: String,
    /// The label holding the route, if any.
    pub route_label: Option<String>,
    /// The label holding the method, if any.
    pub method_label: Option<String>,
    /// Where each choice came from, one sentence each, for the profile's comments.
    pub notes: Vec<String>,
}

/// Finds the request counter, the latency family and the status, route and method labels in an exposition.
///
/// # Errors
///
/// A sentence saying what is missing when no request counter with a status label is exposed.
pub fn discover(text: &str) -> Result<Discovery, String> {
    let types = declared_types(text);
    let samples = parse_exposition(text);
    if samples.is_empty() {
        return Err("the exposition has no samples".to_owned());
    }
    let families = group(&samples, &types);
    let mut candidates: Vec<(&String, &Family)> = families
        .iter()
        .filter(|(_, family)| family.is_request_count() && status_label(family).is_some())
        .collect();
    if candidates.is_empty() {
        let seen: Vec<&str> = families.keys().map(String::as_str).take(12).collect();
        return Err(format!(
            "no counter or histogram/summary `_count` has a status label ({}) among the {} families exposed ({}{})",
            STATUS_LABELS.join(", "),
            families.len(),
            seen.join(", "),
            if families.len() > seen.len() {
                ", …"
            } else {
                ""
            }
        ));
    }
    candidates.sort_by_key(|(name, family)| {
        let status = status_label(family).unwrap_or_default();
        (
            !family.looks_like_status(status),
            name.contains("client"),
            !(name.contains("request") || name.contains("http")),
            route_label(family).is_none(),
            family.role == Role::Count,
            name.len(),
        )
    });
    let (requests_metric, family) = candidates[0];
    let status = status_label(family).unwrap_or_default().to_owned();
    let route = route_label(family).map(str::to_owned);
    let method = METHOD_LABELS
        .iter()
        .find(|label| family.labels.contains_key(**label))
        .map(|label| (*label).to_owned());
    let kind = match family.role {
        Role::Counter => "counter",
        Role::Count => "histogram/summary count",
        Role::Bucket | Role::Other => "series",
    };
    let mut notes = vec![format!(
        "requests_metric: the {kind} `{requests_metric}` has the status label `{status}` (values such as {})",
        family.examples(&status)
    )];
    match &route {
        Some(route) => notes.push(format!(
            "route_label: `{route}` (values such as {})",
            family.examples(route)
        )),
        None => notes.push(format!(
            "route_label: none of {} is on `{requests_metric}`: top errors will not name a route",
            ROUTE_LABELS.join(", ")
        )),
    }
    if method.is_none() {
        notes.push(format!(
            "method_label: none of {} is on `{requests_metric}`",
            METHOD_LABELS.join(", ")
        ));
    }
    let (duration_metric, duration_has_buckets, note) = latency(&families, requests_metric, family);
    notes.push(note);
    Ok(Discovery {
        requests_metric: requests_metric.clone(),
        duration_metric,
        duration_has_buckets,
        status_label: status,
        route_label: route,
        method_label: method,
        notes,
    })
}

/// The role of a sample name in its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A counter (`*_total`, or declared `counter`).
    Counter,
    /// A histogram's or summary's `_count`.
    Count,
    /// A histogram's `_bucket`.
    Bucket,
    /// Anything else (gauges, `_sum`, untyped).
    Other,
}

/// The samples of one sample name: its role, base family and label values.
#[derive(Debug)]
struct Family {
    role: Role,
    /// The family without its `_count`/`_bucket` suffix.
    base: String,
    /// Every label name seen on the samples, with the values seen.
    labels: BTreeMap<String, BTreeSet<String>>,
}

impl Family {
    fn is_request_count(&self) -> bool {
        matches!(self.role, Role::Counter | Role::Count)
    }

    /// Whether the label's values look like HTTP statuses (`200`) or classes (`2xx`).
    fn looks_like_status(&self, label: &str) -> bool {
        self.labels.get(label).is_some_and(|values| {
            !values.is_empty()
                && values.iter().all(|value| {
                    let bytes = value.as_bytes();
                    bytes.len() == 3
                        && (b'1'..=b'5').contains(&bytes[0])
                        && ((bytes[1].is_ascii_digit() && bytes[2].is_ascii_digit())
                            || value[1..].eq_ignore_ascii_case("xx"))
                })
        })
    }

    /// Whether the label's values look like routes (`/orders`, `/{id}`, `:id`).
    fn looks_like_route(&self, label: &str) -> bool {
        self.labels.get(label).is_some_and(|values| {
            values
                .iter()
                .any(|value| value.starts_with('/') || value.contains('{') || value.contains(':'))
        })
    }

    /// Up to three values of the label, quoted, for the notes.
    fn examples(&self, label: &str) -> String {
        self.labels
            .get(label)
            .map(|values| {
                values
                    .iter()
                    .take(3)
                    .map(|value| format!("\"{value}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

/// The status label of a candidate: the first of [`STATUS_LABELS`] present whose values look like statuses, else
/// the first present.
fn status_label(family: &Family) -> Option<&'static str> {
    let present = || {
        STATUS_LABELS
            .iter()
            .copied()
            .filter(|label| family.labels.contains_key(*label))
    };
    present()
        .find(|label| family.looks_like_status(label))
        .or_else(|| present().next())
}

/// The route label of a candidate: the first of [`ROUTE_LABELS`] present whose values look like routes, else the
/// first present.
fn route_label(family: &Family) -> Option<&'static str> {
    let present = || {
        ROUTE_LABELS
            .iter()
            .copied()
            .filter(|label| family.labels.contains_key(*label))
    };
    present()
        .find(|label| family.looks_like_route(label))
        .or_else(|| present().next())
}

/// The latency family: the counter's own histogram, another server histogram, else a summary; and the note.
fn latency(
    families: &BTreeMap<String, Family>,
    requests_metric: &str,
    requests: &Family,
) -> (String, bool, String) {
    let buckets = |base: &str| families.contains_key(&format!("{base}_bucket"));
    if requests.role == Role::Count && buckets(&requests.base) {
        return (
            requests.base.clone(),
            true,
            format!(
                "duration_metric: `{}` is the histogram `{requests_metric}` counts",
                requests.base
            ),
        );
    }
    let mut histograms: Vec<&Family> = families
        .values()
        .filter(|family| family.role == Role::Bucket)
        .collect();
    histograms.sort_by_key(|family| {
        let name = &family.base;
        (
            name.contains("client"),
            !(name.contains("duration") || name.contains("latency")),
            !(name.contains("request") || name.contains("http")),
            !name.ends_with("_seconds"),
            name.contains("highr"),
            name.len(),
        )
    });
    if let Some(histogram) = histograms.first() {
        return (
            histogram.base.clone(),
            true,
            format!(
                "duration_metric: `{}` is the exposed histogram closest to HTTP request latency",
                histogram.base
            ),
        );
    }
    if requests.role == Role::Count {
        return (
            requests.base.clone(),
            false,
            format!(
                "duration_metric: `{}` is a summary without buckets (no p95 can be read from it; enable percentile histograms to get one)",
                requests.base
            ),
        );
    }
    (
        requests.base.clone(),
        false,
        "duration_metric: no latency histogram or summary is exposed: the p95 cannot be read"
            .to_owned(),
    )
}

/// `# TYPE name kind` lines, by name.
fn declared_types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("#") && words.next() == Some("TYPE")).then_some(())?;
            Some((words.next()?.to_owned(), words.next()?.to_ascii_lowercase()))
        })
        .collect()
}

/// Groups the samples by name, with each name's role from the declared types (or, undeclared, its suffix).
fn group(samples: &[Sample], types: &BTreeMap<String, String>) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for sample in samples {
        let family = families.entry(sample.name.clone()).or_insert_with(|| {
            let (role, base) = role(&sample.name, types);
            Family {
                role,
                base,
                labels: BTreeMap::new(),
            }
        });
        for (name, value) in &sample.labels {
            family
                .labels
                .entry(name.clone())
                .or_default()
                .insert(value.clone());
        }
    }
    families
}

fn role(name: &str, types: &BTreeMap<String, String>) -> (Role, String) {
    let declared = |base: &str| types.get(base).map(String::as_str);
    for (suffix, role) in [("_count", Role::Count), ("_bucket", Role::Bucket)] {
        if let Some(base) = name.strip_suffix(suffix) {
            match declared(base) {
                Some("histogram" | "summary" | "gaugehistogram") | None => {
                    return (role, base.to_owned());
                }
                _ => {}
            }
        }
    }
    let counter = declared(name) == Some("counter")
        || name
            .strip_suffix("_total")
            .is_some_and(|base| matches!(declared(base), Some("counter") | None));
    if counter {
        (Role::Counter, name.to_owned())
    } else {
        (Role::Other, name.to_owned())
    }
}

#[cfg(test)]
mod tests;
