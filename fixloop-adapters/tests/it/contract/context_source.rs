//! Contract of [`ContextSource`]: an incident's findings carry a top error and evidence links with absolute
//! http(s) URLs, a quiet service has no top error and still succeeds, notes stay few and short, a slow source is a
//! timeout, and a source that answers errors or cannot be reached is unavailable; every gather returns within a
//! bound.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{ContextFindings, ContextQuery, ContextSource, ErrorKind};

use super::bounded;

/// Most notes a gather may return: the real adapter's default cap (`DatadogMcpConfig::max_notes`).
pub(crate) const MAX_NOTES: usize = 20;

/// Longest note (and top error) a gather may return, in characters. The Datadog MCP adapter cuts vendor text to
/// 200 characters by default (`DatadogMcpConfig::max_note_chars`), then prefixes a note with its tool (`logs: `,
/// `metrics: `, `monitors: `) and marks a cut with `…`: at most 211; the contract leaves some room for a new tool.
pub(crate) const MAX_NOTE_CHARS: usize = 240;

/// What the source is asked in every case.
pub(crate) fn query() -> ContextQuery {
    ContextQuery {
        service: "checkout".to_owned(),
        incident_id: Some("inc-0001".to_owned()),
        window: Duration::from_secs(900),
    }
}

/// What the service and the source behind the port are doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Situation {
    /// The service fails: error logs with a most frequent message, metrics and monitors to look at. Behind a real
    /// adapter, at least one vendor line is longer than [`MAX_NOTE_CHARS`], so the adapter's bounds are exercised.
    Incident,
    /// The service is quiet: no error logs in the window.
    Quiet,
    /// The source answers later than the adapter's timeout (or never).
    Slow,
    /// The source answers, but with errors.
    Failing,
    /// Nothing answers at the source's address.
    Unreachable,
}

/// Puts a context source into a situation.
#[async_trait]
pub(crate) trait ContextScenario: Send + Sync {
    /// Arranges for the next `gather` to observe `situation`.
    async fn arrange(&self, situation: Situation);
}

/// Runs every case, each on a fresh `(source, scenario)` from `make`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn ContextSource>, Box<dyn ContextScenario>)>,
{
    let (source, scenario) = make().await;
    incident_findings_carry_a_top_error_and_evidence(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    quiet_service_has_no_top_error_and_still_succeeds(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    slow_source_is_a_timeout(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    failing_source_is_unavailable(source, scenario.as_ref()).await;
    let (source, scenario) = make().await;
    unreachable_source_is_unavailable(source, scenario.as_ref()).await;
}

/// An incident: a non-empty top error, at least one evidence link, every link well formed, notes bounded.
pub(crate) async fn incident_findings_carry_a_top_error_and_evidence(
    source: Arc<dyn ContextSource>,
    scenario: &dyn ContextScenario,
) {
    scenario.arrange(Situation::Incident).await;
    let findings = bounded("gather", source.gather(&query()))
        .await
        .unwrap_or_else(|error| panic!("incident gather failed: {}", error.detail()));
    let top_error = findings.top_error.as_deref().expect("a top error");
    assert!(!top_error.trim().is_empty(), "{findings:?}");
    assert!(
        top_error.chars().count() <= MAX_NOTE_CHARS,
        "top error of {} characters",
        top_error.chars().count()
    );
    assert!(!findings.evidence_links.is_empty(), "{findings:?}");
    assert_well_formed(&findings);
}

/// A quiet service: no top error, and the gather still succeeds with well-formed findings.
pub(crate) async fn quiet_service_has_no_top_error_and_still_succeeds(
    source: Arc<dyn ContextSource>,
    scenario: &dyn ContextScenario,
) {
    scenario.arrange(Situation::Quiet).await;
    let findings = bounded("gather", source.gather(&query()))
        .await
        .unwrap_or_else(|error| panic!("quiet gather failed: {}", error.detail()));
    assert_eq!(findings.top_error, None, "{findings:?}");
    assert_well_formed(&findings);
}

/// A source slower than the adapter's timeout fails with [`ErrorKind::Timeout`].
pub(crate) async fn slow_source_is_a_timeout(
    source: Arc<dyn ContextSource>,
    scenario: &dyn ContextScenario,
) {
    scenario.arrange(Situation::Slow).await;
    let error = bounded("gather", source.gather(&query()))
        .await
        .expect_err("a slow source must fail");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
}

/// A source that answers with errors fails with [`ErrorKind::Unavailable`].
pub(crate) async fn failing_source_is_unavailable(
    source: Arc<dyn ContextSource>,
    scenario: &dyn ContextScenario,
) {
    scenario.arrange(Situation::Failing).await;
    let error = bounded("gather", source.gather(&query()))
        .await
        .expect_err("a failing source must fail");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
}

/// A source nobody answers for fails with [`ErrorKind::Unavailable`].
pub(crate) async fn unreachable_source_is_unavailable(
    source: Arc<dyn ContextSource>,
    scenario: &dyn ContextScenario,
) {
    scenario.arrange(Situation::Unreachable).await;
    let error = bounded("gather", source.gather(&query()))
        .await
        .expect_err("an unreachable source must fail");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
}

/// Every evidence link has a label and an absolute http(s) URL with a host; at most [`MAX_NOTES`] notes, each
/// non-empty, on one line and at most [`MAX_NOTE_CHARS`] characters.
fn assert_well_formed(findings: &ContextFindings) {
    for link in &findings.evidence_links {
        assert!(!link.label.trim().is_empty(), "{link:?}");
        let url = reqwest::Url::parse(&link.url)
            .unwrap_or_else(|error| panic!("{link:?} has no absolute url: {error}"));
        assert!(
            matches!(url.scheme(), "http" | "https") && url.host_str().is_some(),
            "{link:?}"
        );
    }
    assert!(
        findings.notes.len() <= MAX_NOTES,
        "{} notes",
        findings.notes.len()
    );
    for note in &findings.notes {
        assert!(!note.trim().is_empty(), "an empty note in {findings:?}");
        assert!(!note.contains('\n'), "{note:?} spans lines");
        assert!(
            note.chars().count() <= MAX_NOTE_CHARS,
            "a note of {} characters",
            note.chars().count()
        );
    }
}
