//! Whether one scrape lets the configured families and labels be read truthfully, per signal (pure): the same
//! judgement fails every read ([`read_failure`]) and fills the live check's report ([`judge`]).

use std::collections::BTreeSet;

use super::ScrapeMetrics;
use super::exposition::Sample;
use crate::signal_check::{Finding, LabelCheck, SignalCheck, SignalKind, absent_label};

/// The quantile a summary's series must carry to give the p95.
pub(crate) const P95_QUANTILE: &str = "0.95";

/// One check per signal (requests, error rate, latency, top error) of an exposition's `samples`, where
/// `mentioned` holds the families the exposition mentions.
pub(crate) fn judge(
    samples: &[Sample],
    mentioned: &BTreeSet<String>,
    metrics: &ScrapeMetrics,
) -> Vec<SignalCheck> {
    let requests = Family::of(samples, &metrics.requests);
    let requests_blind = if !mentioned.contains(&metrics.requests) {
        Some(format!(
            "family `{}` is not in the exposition",
            metrics.requests
        ))
    } else if requests.series == 0 {
        Some(format!(
            "family `{}` has no series: its selector matches nothing",
            metrics.requests
        ))
    } else {
        None
    };
    let mut checks = Vec::with_capacity(4);
    checks.push(SignalCheck {
        signal: SignalKind::Requests,
        reads: metrics.requests.clone(),
        series: requests.series,
        labels: Vec::new(),
        finding: requests_blind.clone().map_or(Finding::Ok, Finding::Blind),
    });
    checks.push(labelled(
        SignalKind::ErrorRate,
        &metrics.requests,
        &requests,
        requests_blind.as_deref(),
        &[metrics.status_label.as_str()],
    ));
    checks.push(latency(samples, mentioned, metrics));
    checks.push(match &metrics.errors {
        Some(errors) => {
            let family = Family::of(samples, errors);
            if family.series == 0 {
                let why = if mentioned.contains(errors) {
                    format!(
                        "family `{errors}` has no series yet (no error counted); the top error comes from `{}` meanwhile",
                        metrics.requests
                    )
                } else {
                    format!(
                        "family `{errors}` is not in the exposition (an exporter may hide it until the first error); the top error comes from `{}` meanwhile",
                        metrics.requests
                    )
                };
                SignalCheck {
                    signal: SignalKind::TopError,
                    reads: errors.clone(),
                    series: 0,
                    labels: Vec::new(),
                    finding: Finding::Warning(why),
                }
            } else {
                labelled(
                    SignalKind::TopError,
                    errors,
                    &family,
                    None,
                    &[
                        metrics.method_label.as_str(),
                        metrics.route_label.as_str(),
                        metrics.status_label.as_str(),
                        metrics.error_label.as_str(),
                    ],
                )
            }
        }
        None => labelled(
            SignalKind::TopError,
            &metrics.requests,
            &requests,
            requests_blind.as_deref(),
            &[metrics.method_label.as_str(), metrics.route_label.as_str()],
        ),
    });
    checks
}

/// Why a read of this exposition must fail, if it must: a blind requests, error-rate or top-error signal (the
/// requests family's own blindness alone when it has no series, since the others follow from it).
pub(crate) fn read_failure(checks: &[SignalCheck]) -> Option<String> {
    let mut reasons: Vec<&str> = Vec::new();
    for check in checks {
        if check.signal == SignalKind::Latency {
            continue;
        }
        if let Finding::Blind(why) = &check.finding {
            if check.signal == SignalKind::Requests {
                return Some(why.clone());
            }
            if !reasons.contains(&why.as_str()) {
                reasons.push(why);
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The series of one family and the label names they carry.
struct Family {
    series: usize,
    labels: BTreeSet<String>,
}

impl Family {
    fn of(samples: &[Sample], name: &str) -> Self {
        let mut series = 0;
        let mut labels = BTreeSet::new();
        for sample in samples.iter().filter(|sample| sample.name == name) {
            series += 1;
            labels.extend(sample.labels.iter().map(|(label, _)| label.clone()));
        }
        Self { series, labels }
    }

    fn label_names(&self) -> Vec<String> {
        self.labels.iter().cloned().collect()
    }
}

/// A signal that needs `labels` on the series of `family`: blind when the family is, or when a label is on none
/// of its series.
fn labelled(
    signal: SignalKind,
    name: &str,
    family: &Family,
    family_blind: Option<&str>,
    labels: &[&str],
) -> SignalCheck {
    let mut checks = Vec::new();
    let mut absent = Vec::new();
    if family.series > 0 {
        for &label in labels {
            // An empty name is a label the profile says the service does not have: nothing relies on it.
            if label.is_empty() || checks.iter().any(|check: &LabelCheck| check.name == label) {
                continue;
            }
            let present = family.labels.contains(label);
            if !present {
                absent.push(absent_label(label, name, &family.label_names()));
            }
            checks.push(LabelCheck {
                name: label.to_owned(),
                present,
            });
        }
    }
    let finding = match family_blind {
        Some(why) => Finding::Blind(why.to_owned()),
        None if absent.is_empty() => Finding::Ok,
        None => Finding::Blind(absent.join("; ")),
    };
    SignalCheck {
        signal,
        reads: name.to_owned(),
        series: family.series,
        labels: checks,
        finding,
    }
}

/// The latency signal: histogram buckets (with `le`), else a summary's `quantile="0.95"` series.
fn latency(
    samples: &[Sample],
    mentioned: &BTreeSet<String>,
    metrics: &ScrapeMetrics,
) -> SignalCheck {
    let buckets = &metrics.latency_buckets;
    let summary = metrics.latency_summary();
    let bucket_series = samples
        .iter()
        .filter(|sample| sample.name == *buckets && sample.label("le").is_some())
        .count();
    let quantile_series = samples
        .iter()
        .filter(|sample| sample.name == summary && sample.label("quantile") == Some(P95_QUANTILE))
        .count();
    let (reads, series) = if bucket_series == 0 && quantile_series > 0 {
        (
            format!("{summary}{{quantile=\"{P95_QUANTILE}\"}}"),
            quantile_series,
        )
    } else {
        (buckets.clone(), bucket_series)
    };
    let declared = [
        buckets.clone(),
        summary.to_owned(),
        format!("{summary}_count"),
        format!("{summary}_sum"),
    ]
    .iter()
    .any(|family| mentioned.contains(family));
    let finding = if series > 0 {
        Finding::Ok
    } else if declared {
        Finding::Warning(format!(
            "`{summary}` has no histogram buckets and no quantile=\"{P95_QUANTILE}\" series (yet): the p95 stays empty"
        ))
    } else {
        Finding::Blind(format!(
            "family `{buckets}` is not in the exposition, nor a summary `{summary}`: the p95 stays empty"
        ))
    };
    SignalCheck {
        signal: SignalKind::Latency,
        reads,
        series,
        labels: Vec::new(),
        finding,
    }
}
