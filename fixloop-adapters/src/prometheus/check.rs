//! PromQL templates checked without and with a Prometheus server: [`parse_template`] parses a template (its
//! placeholders replaced) with the `promql-parser` crate, for `profile check`; [`PrometheusSignalSource::check`]
//! runs each query once and asks Prometheus which labels each queried metric carries, for `profile check --live`
//! and the start-up diagnostic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;

use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};

use super::{PromQlTemplates, PrometheusSignalSource, Queries, wire};
use crate::error::{AdapterError, ErrorKind};
use crate::signal_check::{
    Finding, LabelCheck, SignalCheck, SignalKind, SourceCheck, absent_label,
};

/// How long a read trusts the latest verdict on the labels its selectors use before asking Prometheus again.
pub(crate) const LABEL_RECHECK: Duration = Duration::from_secs(60);

/// The verdict on the labels a read's selectors use: when it was reached, and why the read is blind, if it is.
#[derive(Debug, Clone)]
pub(crate) struct LabelVerdict {
    at: Instant,
    blind: Option<String>,
}

/// The window a template is rendered with for parsing.
const PARSE_WINDOW: Duration = Duration::from_secs(300);

/// Parses `template` as PromQL after replacing its placeholders as a read does (`{range}` → `[5m]`, no extra
/// selector).
///
/// # Errors
///
/// The parser's message when the rendered query is not PromQL.
pub fn parse_template(template: &str) -> Result<(), String> {
    parse(&render(template)).map(|_| ())
}

impl PrometheusSignalSource {
    /// Runs every query of a read over `window` once and asks Prometheus (`GET /api/v1/labels?match[]=<metric>`)
    /// which labels each metric the queries select carries; reports per signal whether the query returns series
    /// and whether each label its selectors match on exists. An empty requests or error-ratio result, a query
    /// Prometheus refuses, or a label on no series of its metric is blind; an empty latency result, or an
    /// errors metric with no series yet, is a warning.
    ///
    /// # Errors
    ///
    /// The first query's failure when Prometheus does not answer (unavailable, timeout, credentials refused,
    /// rate limited); a refused query is reported in the check instead.
    pub async fn check(&self, window: Duration) -> Result<SourceCheck, AdapterError> {
        let window = window.max(self.config.min_range);
        let queries = self.config.templates.render(&self.config.selector, window);
        let signals = [
            (SignalKind::Requests, queries.requests),
            (SignalKind::ErrorRate, queries.error_ratio),
            (SignalKind::Latency, queries.p95_ms),
            (SignalKind::TopError, queries.top_error),
        ];
        let mut labels_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut checks = Vec::with_capacity(signals.len());
        for (signal, query) in signals {
            let result = match self.query(&query).await {
                Ok(samples) => Ok(samples.len()),
                Err(error) if error.kind() == ErrorKind::InvalidResponse => Err(error.detail()),
                Err(error) => return Err(error),
            };
            let selectors = parse(&query)
                .map(|expr| selectors(&expr))
                .unwrap_or_default();
            for metric in selectors.keys() {
                if !labels_of.contains_key(metric) {
                    let labels = self.labels(metric).await?;
                    labels_of.insert(metric.clone(), labels);
                }
            }
            checks.push(judge(signal, query, result, &selectors, &labels_of));
        }
        Ok(SourceCheck {
            url: self.base().to_owned(),
            signals: checks,
        })
    }

    /// Why a read of `queries` is blind because a requests, error-ratio or top-error selector matches on a label
    /// that is on no series of its metric; asked of Prometheus at most every [`LABEL_RECHECK`], the verdict kept
    /// in between. A labels API that does not answer, or a metric without series, is no verdict (the queries'
    /// own results judge those).
    pub(super) async fn label_blindness(&self, queries: &Queries) -> Option<String> {
        let now = Instant::now();
        {
            let verdict = self
                .labels_verdict
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(verdict) = verdict.as_ref()
                && now.duration_since(verdict.at) < LABEL_RECHECK
            {
                return verdict.blind.clone();
            }
        }
        let mut labels_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut reasons: Vec<String> = Vec::new();
        for (name, query) in [
            ("requests", &queries.requests),
            ("error-ratio", &queries.error_ratio),
            ("top-error", &queries.top_error),
        ] {
            let Ok(expr) = parse(query) else {
                continue;
            };
            for (metric, matched) in selectors(&expr) {
                if !labels_of.contains_key(&metric) {
                    let known = self.labels(&metric).await.unwrap_or_default();
                    labels_of.insert(metric.clone(), known);
                }
                let known = labels_of
                    .get(&metric)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                if known.is_empty() {
                    continue;
                }
                for label in matched.iter().filter(|label| !known.contains(label)) {
                    let why = format!(
                        "the {name} query uses {}",
                        absent_label(label, &metric, known)
                    );
                    if !reasons.contains(&why) {
                        reasons.push(why);
                    }
                }
            }
        }
        let blind = (!reasons.is_empty()).then(|| reasons.join("; "));
        *self
            .labels_verdict
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(LabelVerdict {
            at: now,
            blind: blind.clone(),
        });
        blind
    }

    /// The label names of `metric`'s series (`GET /api/v1/labels?match[]=<metric>`), without `__name__`.
    async fn labels(&self, metric: &str) -> Result<Vec<String>, AdapterError> {
        let mut request = self
            .http
            .get(format!("{}/api/v1/labels", self.base()))
            .query(&[("match[]", metric)])
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.timeout);
        if let Some(token) = &self.config.bearer {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(AdapterError::from_reqwest)?;
        let response = AdapterError::check_status(response).await?;
        let body = response.bytes().await.map_err(AdapterError::from_reqwest)?;
        let envelope: wire::LabelsEnvelope = serde_json::from_slice(&body).map_err(|error| {
            AdapterError::invalid_response(format!(
                "prometheus labels: malformed response: {error}"
            ))
            .with_source(error)
        })?;
        if envelope.status != "success" {
            return Err(AdapterError::invalid_response(format!(
                "prometheus labels: unexpected status {:?}",
                envelope.status
            )));
        }
        Ok(envelope
            .data
            .into_iter()
            .filter(|label| label != "__name__")
            .collect())
    }
}

/// The verdict on one signal: its query's result (series, or why Prometheus refused it) and the labels its
/// selectors match on, against the labels Prometheus knows for each metric.
fn judge(
    signal: SignalKind,
    query: String,
    result: Result<usize, String>,
    selectors: &BTreeMap<String, BTreeSet<String>>,
    labels_of: &BTreeMap<String, Vec<String>>,
) -> SignalCheck {
    let series = *result.as_ref().unwrap_or(&0);
    let mut labels = Vec::new();
    let mut blind = Vec::new();
    let mut warnings = Vec::new();
    if let Err(why) = &result {
        blind.push(format!("Prometheus refuses the query: {why}"));
    }
    for (metric, matched) in selectors {
        let known = labels_of.get(metric).map(Vec::as_slice).unwrap_or_default();
        if known.is_empty() {
            let why = format!("metric `{metric}` has no series in Prometheus");
            if signal == SignalKind::TopError {
                warnings.push(format!("{why} (yet: no error counted so far?)"));
            } else {
                blind.push(why);
            }
            continue;
        }
        for label in matched {
            let present = known.iter().any(|known| known == label);
            if !present {
                blind.push(absent_label(label, metric, known));
            }
            labels.push(LabelCheck {
                name: label.clone(),
                present,
            });
        }
    }
    if result.is_ok() && series == 0 {
        match signal {
            SignalKind::Requests | SignalKind::ErrorRate => {
                blind.push("the query returns no series".to_owned());
            }
            SignalKind::Latency => {
                warnings.push("the query returns no series: the p95 stays empty".to_owned());
            }
            SignalKind::TopError => {}
        }
    }
    let finding = if !blind.is_empty() {
        Finding::Blind(blind.join("; "))
    } else if !warnings.is_empty() {
        Finding::Warning(warnings.join("; "))
    } else {
        Finding::Ok
    };
    SignalCheck {
        signal,
        reads: query,
        series,
        labels,
        finding,
    }
}

fn render(template: &str) -> String {
    let templates = PromQlTemplates {
        error_ratio: template.to_owned(),
        p95_ms: String::new(),
        requests: String::new(),
        top_error: String::new(),
    };
    templates.render("", PARSE_WINDOW).error_ratio
}

fn parse(query: &str) -> Result<Expr, String> {
    parser::parse(query)
}

/// The metrics a query selects by name, each with the label names its matchers use (`__name__` left out).
fn selectors(expr: &Expr) -> BTreeMap<String, BTreeSet<String>> {
    struct Collect(BTreeMap<String, BTreeSet<String>>);
    impl ExprVisitor for Collect {
        type Error = ();
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
            let selector = match expr {
                Expr::VectorSelector(selector) => selector,
                Expr::MatrixSelector(matrix) => &matrix.vs,
                _ => return Ok(true),
            };
            let name = selector.name.clone().or_else(|| {
                selector
                    .matchers
                    .matchers
                    .iter()
                    .find(|matcher| matcher.name == "__name__")
                    .map(|matcher| matcher.value.clone())
            });
            if let Some(name) = name {
                let labels = self.0.entry(name).or_default();
                let or_matchers = selector.matchers.or_matchers.iter().flatten();
                for matcher in selector.matchers.matchers.iter().chain(or_matchers) {
                    if matcher.name != "__name__" {
                        labels.insert(matcher.name.clone());
                    }
                }
            }
            Ok(true)
        }
    }
    let mut collect = Collect(BTreeMap::new());
    let _ = walk_expr(&mut collect, expr);
    collect.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_templates_parse_and_broken_ones_do_not() {
        let demo = PromQlTemplates::demo_shop();
        for template in [
            &demo.error_ratio,
            &demo.p95_ms,
            &demo.requests,
            &demo.top_error,
        ] {
            assert_eq!(parse_template(template), Ok(()), "{template}");
        }
        assert_eq!(parse_template("vector(0)"), Ok(()));
        let error = parse_template("sum(rate(http_requests_total{code=~\"5..\"}{range})")
            .expect_err("an unclosed parenthesis");
        assert!(!error.is_empty());
        assert!(parse_template("rate(x[5m]").is_err());
    }

    #[test]
    fn selectors_name_each_metric_and_its_matched_labels() {
        let expr = parse(&render(&PromQlTemplates::demo_shop().error_ratio)).expect("PromQL");
        let found = selectors(&expr);
        let labels: Vec<&str> = found["demo_http_requests_total"]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(labels, ["source", "status"]);
        assert_eq!(found.len(), 1);
    }
}
