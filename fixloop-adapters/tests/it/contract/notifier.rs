//! Contract of [`Notifier`]: every kind is delivered (the sink reached once) or skipped (the sink not reached at
//! all); a sink that rate limits is `RateLimited` with its `Retry-After`; a sink that rejects the message is an
//! invalid response (retrying cannot help); a sink that fails or cannot be reached is unavailable; a slow sink is
//! a timeout; and no error or `Debug` ever shows the sink's secret.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{Delivery, ErrorKind, Notification, NotificationKind, Notifier};
use fixloop_contract::Link;

use super::{bounded, fixed_now};

/// The `Retry-After` a rate-limiting sink sends, in seconds.
pub(crate) const RETRY_AFTER_SECS: u64 = 7;

/// What the sink does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// Accepts every message (the sink's documented success answer).
    Accepts,
    /// Answers 429 with `Retry-After: 7`.
    RateLimits,
    /// Rejects the message as invalid (400 with the sink's error body).
    Rejects,
    /// Fails (500).
    Fails,
    /// Answers later than the notifier's timeout.
    Slow,
    /// Cannot be reached.
    Unreachable,
}

/// Puts a notifier's sink into a situation, and says what reached it.
#[async_trait]
pub(crate) trait NotifierScenario: Send + Sync {
    /// Arranges for the next notifications to meet `sink`.
    async fn arrange(&self, sink: Sink);
    /// How many requests reached the sink so far.
    async fn received(&self) -> usize;
    /// The sink's secret (URL, routing key), if any.
    fn secret(&self) -> Option<String>;
}

/// A notification of `kind` about incident `inc-0001` of `checkout`.
pub(crate) fn notification(kind: NotificationKind) -> Notification {
    Notification {
        id: format!("ntf-{}", kind.as_str()),
        kind,
        service: "checkout".to_owned(),
        incident_id: "inc-0001".to_owned(),
        summary: "Checkout error rate 35 % <above> 5 % & rising".to_owned(),
        action_id: matches!(
            kind,
            NotificationKind::ActionProposed | NotificationKind::ActionTaken
        )
        .then(|| "disable-payment-feature".to_owned()),
        links: vec![Link {
            label: "Incident".to_owned(),
            url: "http://127.0.0.1:8088/incidents/inc-0001".to_owned(),
        }],
        at: fixed_now(),
    }
}

/// Runs every case, each on a fresh `(notifier, scenario)` from `make`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Notifier>, Box<dyn NotifierScenario>)>,
{
    let (notifier, scenario) = make().await;
    every_kind_is_delivered_once_or_skipped_without_io(notifier, scenario.as_ref()).await;
    let (notifier, scenario) = make().await;
    rate_limited_sink_gives_its_retry_after(notifier, scenario.as_ref()).await;
    let (notifier, scenario) = make().await;
    rejected_message_is_an_invalid_response(notifier, scenario.as_ref()).await;
    let (notifier, scenario) = make().await;
    failing_sink_is_unavailable(notifier, scenario.as_ref()).await;
    let (notifier, scenario) = make().await;
    slow_sink_is_a_timeout(notifier, scenario.as_ref()).await;
    let (notifier, scenario) = make().await;
    unreachable_sink_is_unavailable(notifier, scenario.as_ref()).await;
}

/// Each kind in turn: delivered means the sink got exactly one more request, skipped means none; incident opened
/// and recovered are always delivered.
pub(crate) async fn every_kind_is_delivered_once_or_skipped_without_io(
    notifier: Arc<dyn Notifier>,
    scenario: &dyn NotifierScenario,
) {
    scenario.arrange(Sink::Accepts).await;
    assert!(!notifier.sink().is_empty());
    for kind in NotificationKind::ALL {
        let before = scenario.received().await;
        let delivery = bounded("notify", notifier.notify(&notification(kind)))
            .await
            .unwrap_or_else(|error| panic!("{kind} failed: {}", error.detail()));
        let sent = scenario.received().await - before;
        match delivery {
            Delivery::Delivered => assert_eq!(sent, 1, "{kind} delivered with {sent} requests"),
            Delivery::Skipped => assert_eq!(sent, 0, "{kind} skipped with {sent} requests"),
        }
        if matches!(
            kind,
            NotificationKind::IncidentOpened | NotificationKind::Recovered
        ) {
            assert_eq!(delivery, Delivery::Delivered, "{kind}");
        }
    }
    if let Some(secret) = scenario.secret() {
        assert!(!format!("{notifier:?}").contains(&secret), "{notifier:?}");
    }
}

/// 429 with `Retry-After: 7` is `RateLimited` with 7 s.
pub(crate) async fn rate_limited_sink_gives_its_retry_after(
    notifier: Arc<dyn Notifier>,
    scenario: &dyn NotifierScenario,
) {
    scenario.arrange(Sink::RateLimits).await;
    let error = expect_failure(&notifier, scenario).await;
    assert_eq!(
        error.kind(),
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(RETRY_AFTER_SECS))
        },
        "{}",
        error.detail()
    );
}

/// A rejected message is an invalid response.
pub(crate) async fn rejected_message_is_an_invalid_response(
    notifier: Arc<dyn Notifier>,
    scenario: &dyn NotifierScenario,
) {
    scenario.arrange(Sink::Rejects).await;
    let error = expect_failure(&notifier, scenario).await;
    assert_eq!(
        error.kind(),
        ErrorKind::InvalidResponse,
        "{}",
        error.detail()
    );
}

/// A failing sink is unavailable.
pub(crate) async fn failing_sink_is_unavailable(
    notifier: Arc<dyn Notifier>,
    scenario: &dyn NotifierScenario,
) {
    scenario.arrange(Sink::Fails).await;
    let error = expect_failure(&notifier, scenario).await;
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
}

/// A slow sink is a timeout.
pub(crate) async fn slow_sink_is_a_timeout(
    notifier: Arc<dyn Notifier>,
    scenario: &dyn NotifierScenario,
) {
    scenario.arrange(Sink::Slow).await;
    let error = expect_failure(&notifier, scenario).await;
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
}

/// An unreachable sink is unavailable.
pub(crate) async fn unreachable_sink_is_unavailable(
    notifier: Arc<dyn Notifier>,
    scenario: &dyn NotifierScenario,
) {
    scenario.arrange(Sink::Unreachable).await;
    let error = expect_failure(&notifier, scenario).await;
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
}

/// Sends an incident-opened notification that must fail, and checks the error hides the secret.
async fn expect_failure(
    notifier: &Arc<dyn Notifier>,
    scenario: &dyn NotifierScenario,
) -> fixloop_adapters::AdapterError {
    let error = bounded(
        "notify",
        notifier.notify(&notification(NotificationKind::IncidentOpened)),
    )
    .await
    .expect_err("the notification must fail");
    if let Some(secret) = scenario.secret() {
        assert!(!error.detail().contains(&secret), "{}", error.detail());
        assert!(!format!("{error:?}").contains(&secret), "{error:?}");
    }
    error
}
