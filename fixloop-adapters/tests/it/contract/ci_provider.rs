//! Contract of [`CiProvider`]: an accepted rerun reaches the provider once and answers a 2xx receipt; rejected
//! credentials are unauthorized; an unknown project, run or job is not found; a provider that rate limits is
//! `RateLimited` with its `Retry-After`; a failing or unreachable provider is unavailable; a slow one is a timeout;
//! and no error or `Debug` ever shows the token.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{AdapterError, CiProvider, ErrorKind, RerunRequest};

use super::bounded;

/// The `Retry-After` a rate-limiting provider sends, in seconds.
pub(crate) const RETRY_AFTER_SECS: u64 = 7;

/// What the provider does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Situation {
    /// Accepts the rerun (the provider's documented success answer).
    Accepts,
    /// Rejects the token (401).
    RejectsToken,
    /// Knows no such project, run or job (404).
    NotFound,
    /// Answers 429 with `Retry-After: 7`.
    RateLimits,
    /// Fails (500).
    Fails,
    /// Answers later than the provider's timeout.
    Slow,
    /// Cannot be reached.
    Unreachable,
}

/// Puts a provider (or the stub behind it) into a situation, and says what reached it.
#[async_trait]
pub(crate) trait ProviderScenario: Send + Sync {
    /// Arranges for the next reruns to meet `situation`.
    async fn arrange(&self, situation: Situation);
    /// How many rerun requests reached the provider so far.
    async fn received(&self) -> usize;
    /// The provider's token, if any.
    fn secret(&self) -> Option<String>;
}

/// The rerun every case asks for: run 9454698428 of `acme/shop-api`, job 26042851364.
pub(crate) fn rerun_request() -> RerunRequest {
    RerunRequest {
        project: "acme/shop-api".to_owned(),
        run_id: "9454698428".to_owned(),
        job_id: Some("26042851364".to_owned()),
    }
}

/// Runs every case, each on a fresh `(provider, scenario)` from `make`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn CiProvider>, Box<dyn ProviderScenario>)>,
{
    let (provider, scenario) = make().await;
    accepted_rerun_reaches_the_provider_once(provider, scenario.as_ref()).await;
    for (situation, expected) in [
        (Situation::RejectsToken, ErrorKind::Unauthorized),
        (Situation::NotFound, ErrorKind::NotFound),
        (
            Situation::RateLimits,
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(RETRY_AFTER_SECS)),
            },
        ),
        (Situation::Fails, ErrorKind::Unavailable),
        (Situation::Slow, ErrorKind::Timeout),
        (Situation::Unreachable, ErrorKind::Unavailable),
    ] {
        let (provider, scenario) = make().await;
        failure_is_classified(provider, scenario.as_ref(), situation, expected).await;
    }
}

/// An accepted rerun: one request reached the provider, the receipt's status is 2xx, `Debug` hides the token.
pub(crate) async fn accepted_rerun_reaches_the_provider_once(
    provider: Arc<dyn CiProvider>,
    scenario: &dyn ProviderScenario,
) {
    scenario.arrange(Situation::Accepts).await;
    assert!(!provider.provider().is_empty());
    let before = scenario.received().await;
    let receipt = bounded("rerun", provider.rerun_failed(&rerun_request()))
        .await
        .unwrap_or_else(|error| panic!("the rerun failed: {}", error.detail()));
    assert!((200..300).contains(&receipt.status), "{receipt:?}");
    assert_eq!(scenario.received().await - before, 1);
    if let Some(secret) = scenario.secret() {
        assert!(!format!("{provider:?}").contains(&secret), "{provider:?}");
    }
}

/// A rerun in `situation` fails with `expected`, and the error hides the token.
pub(crate) async fn failure_is_classified(
    provider: Arc<dyn CiProvider>,
    scenario: &dyn ProviderScenario,
    situation: Situation,
    expected: ErrorKind,
) {
    scenario.arrange(situation).await;
    let error: AdapterError = bounded("rerun", provider.rerun_failed(&rerun_request()))
        .await
        .expect_err("the rerun must fail");
    assert_eq!(error.kind(), expected, "{situation:?}: {}", error.detail());
    if let Some(secret) = scenario.secret() {
        assert!(!error.detail().contains(&secret), "{}", error.detail());
        assert!(!format!("{error:?}").contains(&secret), "{error:?}");
    }
}
