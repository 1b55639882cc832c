//! What a live check of a signal source found, per signal: the report of [`ScrapeSignalSource::check`] and
//! [`PrometheusSignalSource::check`], read by `fixloop profile check --live` and by `serve` at start.
//!
//! A signal is *blind* when the source cannot read it truthfully: the requests family or query matches no series,
//! or a label the profile relies on is on no series of its family. A blind requests, error-rate or top-error signal
//! also fails every read of the source (so the engine marks the service `signals_degraded`); a blind latency
//! leaves the p95 empty. A *warning* is something the source can live with (no latency histogram, an errors
//! family with no series yet).
//!
//! [`ScrapeSignalSource::check`]: crate::ScrapeSignalSource::check
//! [`PrometheusSignalSource::check`]: crate::prometheus::PrometheusSignalSource::check

use std::fmt;

/// The signals a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignalKind {
    /// The request count.
    Requests,
    /// The error rate (the status label, or the error-ratio query).
    ErrorRate,
    /// The p95 latency.
    Latency,
    /// The most frequent error.
    TopError,
}

impl SignalKind {
    /// The signal's name in reports: `requests`, `error rate`, `latency`, `top error`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::ErrorRate => "error rate",
            Self::Latency => "latency",
            Self::TopError => "top error",
        }
    }
}

/// The verdict on one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The signal reads real series.
    Ok,
    /// The signal is usable but incomplete; why.
    Warning(String),
    /// The signal cannot be read truthfully; why.
    Blind(String),
}

/// One configured label and whether any series of its family carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCheck {
    /// The label name, for example `status`.
    pub name: String,
    /// Whether at least one series carries it.
    pub present: bool,
}

/// The check of one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalCheck {
    /// Which signal.
    pub signal: SignalKind,
    /// What is read: a metric family (scrape) or a PromQL query (Prometheus).
    pub reads: String,
    /// Series the family or the query returned.
    pub series: usize,
    /// The labels the signal relies on (empty when there was no series to look at).
    pub labels: Vec<LabelCheck>,
    /// The verdict.
    pub finding: Finding,
}

impl SignalCheck {
    /// Whether the signal is blind.
    #[must_use]
    pub fn is_blind(&self) -> bool {
        matches!(self.finding, Finding::Blind(_))
    }
}

impl fmt::Display for SignalCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} series of {}",
            self.signal.as_str(),
            self.series,
            self.reads
        )?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|label| {
                    format!(
                        "{} {}",
                        label.name,
                        if label.present { "present" } else { "ABSENT" }
                    )
                })
                .collect();
            write!(f, "; labels: {}", labels.join(", "))?;
        }
        match &self.finding {
            Finding::Ok => f.write_str(" -> ok"),
            Finding::Warning(why) => write!(f, " -> warning: {why}"),
            Finding::Blind(why) => write!(f, " -> BLIND: {why}"),
        }
    }
}

/// What a live check of one signal source found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCheck {
    /// The URL checked (the metrics endpoint, or the Prometheus server).
    pub url: String,
    /// One check per signal, in [`SignalKind`] order.
    pub signals: Vec<SignalCheck>,
}

impl SourceCheck {
    /// The blind signals.
    pub fn blind(&self) -> impl Iterator<Item = &SignalCheck> {
        self.signals.iter().filter(|check| check.is_blind())
    }

    /// Whether any signal is blind.
    #[must_use]
    pub fn is_blind(&self) -> bool {
        self.blind().next().is_some()
    }

    /// The check of `signal`, if it was checked.
    #[must_use]
    pub fn signal(&self, signal: SignalKind) -> Option<&SignalCheck> {
        self.signals.iter().find(|check| check.signal == signal)
    }
}

/// `"label `status` is on no series of `x`; its labels are code, handler, method"`.
pub(crate) fn absent_label(label: &str, family: &str, present: &[String]) -> String {
    let present = if present.is_empty() {
        "none".to_owned()
    } else {
        present.join(", ")
    };
    format!("label `{label}` is on no series of `{family}`; its labels are {present}")
}
