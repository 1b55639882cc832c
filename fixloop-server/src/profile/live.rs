//! The live check of a profile's signal sources: `fixloop profile check --live FILE`, and the same check `serve`
//! runs at start (one WARN line per blind signal; it never refuses to start, the reads then degrade).
//!
//! For each service it connects to the signal source once and reports, per signal (requests, error rate, latency,
//! top error), whether the family or query returns series and whether each label the profile relies on exists
//! ([`SourceCheck`], from `ScrapeSignalSource::check` and `PrometheusSignalSource::check`). A signal is *blind*
//! when it cannot be read truthfully (README "Blind signals"); a source that does not answer is blind as a whole.
//! Datadog sources are not checked live (no read-only probe of a query's series is used), synthetic probes need no
//! metrics. Every call has a timeout: each adapter's own, and [`SERVICE_BUDGET`] over a whole service.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use fixloop_adapters::prometheus::PrometheusSignalSource;
use fixloop_adapters::{Finding, ScrapeSignalSource, SignalKind, SourceCheck};

use super::ServiceProfile;
use super::file::SignalsFile;
use crate::config::Config;
use crate::runtime::ports::{prometheus_config, scrape_config};

/// The longest one service's live check may take.
pub const SERVICE_BUDGET: Duration = Duration::from_secs(30);

/// The window the Prometheus queries are checked over when the profile sets none.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// What the live check found for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceReport {
    /// The service's name.
    pub service: String,
    /// The signal source, described (`scrape of http://…/metrics`).
    pub source: String,
    /// What was found.
    pub outcome: Outcome,
}

/// The outcome of one service's live check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The source answered: one check per signal.
    Checked(SourceCheck),
    /// The source did not answer (or the check ran out of time): every signal is blind; why.
    Unreachable(String),
    /// The source is not checked live; why.
    NotChecked(String),
}

impl ServiceReport {
    /// One line per blind signal: `service: signal: reason`.
    #[must_use]
    pub fn blind_signals(&self) -> Vec<String> {
        match &self.outcome {
            Outcome::Checked(check) => check
                .blind()
                .map(|signal| {
                    let why = match &signal.finding {
                        Finding::Blind(why) => why.as_str(),
                        Finding::Ok | Finding::Warning(_) => "",
                    };
                    format!("{}: {}: {why}", self.service, signal.signal.as_str())
                })
                .collect(),
            Outcome::Unreachable(why) => vec![format!(
                "{}: every signal: the source does not answer: {why}",
                self.service
            )],
            Outcome::NotChecked(_) => Vec::new(),
        }
    }

    /// The report as text: a heading line, then one line per signal.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = format!("{}: {}\n", self.service, self.source);
        match &self.outcome {
            Outcome::Checked(check) => {
                for signal in &check.signals {
                    let _ = writeln!(out, "  {signal}");
                }
            }
            Outcome::Unreachable(why) => {
                let _ = writeln!(out, "  BLIND: the source does not answer: {why}");
            }
            Outcome::NotChecked(why) => {
                let _ = writeln!(out, "  not checked live: {why}");
            }
        }
        out
    }
}

/// Checks `service`'s signal source once, within [`SERVICE_BUDGET`].
pub async fn check_service(
    config: &Config,
    service: &ServiceProfile,
    http: &reqwest::Client,
) -> ServiceReport {
    let name = service.spec.name.clone();
    let base = service.spec.base_url.as_str();
    let (source, checking) = match &service.signals {
        SignalsFile::Scrape(scrape) => {
            let scrape = scrape_config(base, scrape);
            let source = format!("scrape of {}", scrape.metrics_url());
            let scraper = ScrapeSignalSource::new(scrape, http.clone());
            let checking = async move {
                scraper
                    .check()
                    .await
                    .map(|check| check.report())
                    .map_err(|error| error.detail())
            };
            (source, Ok(Box::pin(checking) as Checking))
        }
        SignalsFile::Prometheus(prometheus) => match prometheus_config(config, &name, prometheus) {
            Ok(prometheus) => {
                let source = format!("Prometheus at {}", prometheus.base_url);
                let window = service
                    .thresholds
                    .window_secs
                    .map_or(DEFAULT_WINDOW, Duration::from_secs);
                let querier = PrometheusSignalSource::new(prometheus, http.clone());
                let checking =
                    async move { querier.check(window).await.map_err(|error| error.detail()) };
                (source, Ok(Box::pin(checking) as Checking))
            }
            Err(why) => {
                return ServiceReport {
                    service: name,
                    source: "Prometheus".to_owned(),
                    outcome: Outcome::Unreachable(why),
                };
            }
        },
        SignalsFile::Datadog(_) => (
            "Datadog".to_owned(),
            Err("Datadog queries are not checked live"),
        ),
        SignalsFile::Synthetic(_) => (
            "synthetic probes".to_owned(),
            Err("FixLoop probes the service itself, no metrics"),
        ),
    };
    let outcome = match checking {
        Err(why) => Outcome::NotChecked(why.to_owned()),
        Ok(checking) => match tokio::time::timeout(SERVICE_BUDGET, checking).await {
            Ok(Ok(check)) => Outcome::Checked(check),
            Ok(Err(why)) => Outcome::Unreachable(why),
            Err(_) => {
                Outcome::Unreachable(format!("no answer within {} s", SERVICE_BUDGET.as_secs()))
            }
        },
    };
    ServiceReport {
        service: name,
        source,
        outcome,
    }
}

/// `serve`'s start-up check of one service: one WARN line per blind signal, one INFO line when every signal
/// reads series.
pub async fn check_at_start(config: Config, service: ServiceProfile, http: reqwest::Client) {
    let report = check_service(&config, &service, &http).await;
    let blind = report.blind_signals();
    match &report.outcome {
        Outcome::NotChecked(_) => {}
        Outcome::Checked(check) if blind.is_empty() => {
            for signal in &check.signals {
                if let Finding::Warning(why) = &signal.finding {
                    tracing::info!(service = %report.service, signal = signal.signal.as_str(), %why, "signal incomplete");
                }
            }
            tracing::info!(service = %report.service, source = %report.source, "the signal source reads every signal");
        }
        Outcome::Checked(check) => {
            for (signal, line) in check.blind().map(|signal| signal.signal).zip(blind) {
                // A blind latency leaves the p95 empty; the other blind signals fail every read.
                let consequence = if signal == SignalKind::Latency {
                    ""
                } else {
                    "; until it is fixed every read fails and the service's signals are degraded"
                };
                tracing::warn!(source = %report.source, "BLIND signal, {line}{consequence}");
            }
        }
        Outcome::Unreachable(_) => {
            for line in blind {
                tracing::warn!(source = %report.source, "BLIND signal, {line}; FixLoop probes the service itself until it answers");
            }
        }
    }
}

/// A source's check, boxed so both kinds of source fit one `match`.
type Checking = Pin<Box<dyn Future<Output = Result<SourceCheck, String>> + Send>>;
