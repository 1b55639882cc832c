//! The notifications outbox's two halves: [`Outbox`], the handle a driver enqueues through (a store write, then a
//! wake-up; it never waits for a sink), and [`DeliveryWorker`], one task per sink that delivers what the store
//! holds for it.
//!
//! A worker takes its sink's oldest unsettled message, waits until it is due, makes one attempt bounded by
//! [`OutboxConfig::attempt_timeout`], and settles it when the sink answers 2xx (or declines its kind). A failed
//! attempt is recorded with the next attempt's time ([`Backoff`]: exponential, capped, no jitter, so a test knows
//! every delay; a sink's `Retry-After` is honoured), and the message stays first: a sink receives its messages in
//! the order they were enqueued, each once as far as it acknowledges. A message the sink refuses for good
//! (`Unauthorized`, `InvalidResponse`, `Refused`) is retried up to [`OutboxConfig::give_up_after`] attempts, then
//! given up, so one bad message cannot hold every later one forever. The store keeps the queue, so a restart
//! delivers what the previous process could not.
//!
//! With replicas, every replica runs a worker per sink on the one shared outbox: the PostgreSQL store hands a
//! sink's messages to one worker at a time (a claim per sink, see `fixloop_adapters::store`'s PostgreSQL outbox),
//! so each message is sent once, in order, by whichever replica holds the claim; an idle worker asks again every
//! [`OutboxConfig::idle_poll`], since another replica's driver enqueues without waking it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fixloop_adapters::notifier::{
    Delivery, Notification, Notifier, PagerDutyNotifier, PagerDutyNotifierConfig, SlackNotifier,
    SlackNotifierConfig, WebhookNotifier, WebhookNotifierConfig,
};
use fixloop_adapters::{AdapterError, ErrorKind, OutboxFailure, OutboxMessage, Store};
use tokio::sync::Notify;

use crate::profile::notify::{NotifySink, NotifyTarget};

/// The retry policy of a sink: `initial`, doubled at every failed attempt, never above `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt.
    pub initial: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 1 s, then 2, 4, 8 … up to 5 minutes between attempts.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait after `attempts` failed attempts (at least one): `initial × 2^(attempts − 1)`, at most `cap`.
    #[must_use]
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1_u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The wait after `attempts` failed attempts when the sink asked for `retry_after`: the longer of the two,
    /// still at most `cap`.
    #[must_use]
    pub fn delay_after(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        self.delay(attempts)
            .max(retry_after.unwrap_or_default())
            .min(self.cap)
    }
}

/// How a [`DeliveryWorker`] delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// The waits between attempts.
    pub backoff: Backoff,
    /// The longest one attempt may take (the notifier's own timeout applies too).
    pub attempt_timeout: Duration,
    /// A message the sink refuses for good is given up after this many attempts (transient failures are retried
    /// for as long as it takes).
    pub give_up_after: u32,
    /// The wait before the store is asked again after it failed.
    pub store_retry: Duration,
    /// How often an idle worker asks the store again without being woken: on a shared store (replicas) another
    /// replica's driver enqueues without waking this worker, and the sink's claim may pass to this one.
    pub idle_poll: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            attempt_timeout: Duration::from_secs(30),
            give_up_after: 5,
            store_retry: Duration::from_secs(5),
            idle_poll: Duration::from_secs(2),
        }
    }
}

/// A configured sink: its name in the outbox (the profile's key) and the notifier that reaches it.
#[derive(Debug, Clone)]
pub struct Sink {
    /// The name the store files its messages under (unique in the process).
    pub name: String,
    /// How it is reached.
    pub notifier: Arc<dyn Notifier>,
}

/// The notifiers of a profile's `[[notify]]` sinks, in their order, on the shared client.
#[must_use]
pub fn notifiers(sinks: &[NotifySink], http: &reqwest::Client) -> Vec<Sink> {
    sinks
        .iter()
        .map(|sink| {
            let notifier: Arc<dyn Notifier> = match &sink.target {
                NotifyTarget::Webhook {
                    url,
                    signing_secret,
                } => Arc::new(WebhookNotifier::new(
                    WebhookNotifierConfig {
                        url: url.clone(),
                        signing_secret: signing_secret.clone(),
                        ..WebhookNotifierConfig::default()
                    },
                    http.clone(),
                )),
                NotifyTarget::Slack { url } => Arc::new(SlackNotifier::new(
                    SlackNotifierConfig {
                        webhook_url: url.clone(),
                        ..SlackNotifierConfig::default()
                    },
                    http.clone(),
                )),
                NotifyTarget::PagerDuty { url, routing_key } => {
                    let defaults = PagerDutyNotifierConfig::default();
                    Arc::new(PagerDutyNotifier::new(
                        PagerDutyNotifierConfig {
                            url: url.clone().unwrap_or(defaults.url.clone()),
                            routing_key: routing_key.clone(),
                            ..defaults
                        },
                        http.clone(),
                    ))
                }
            };
            Sink {
                name: sink.name.clone(),
                notifier,
            }
        })
        .collect()
}

/// What drivers enqueue through: the store, and every sink with the bell of its worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
    sinks: Arc<[(String, Arc<Notify>)]>,
}

impl Outbox {
    /// The outbox of `sinks` in `store`, and one worker per sink (run each with [`DeliveryWorker::run`]).
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        sinks: Vec<Sink>,
        config: OutboxConfig,
    ) -> (Self, Vec<DeliveryWorker>) {
        let mut bells = Vec::with_capacity(sinks.len());
        let mut workers = Vec::with_capacity(sinks.len());
        for sink in sinks {
            let wake = Arc::new(Notify::new());
            bells.push((sink.name.clone(), Arc::clone(&wake)));
            workers.push(DeliveryWorker {
                store: Arc::clone(&store),
                sink,
                config,
                wake,
            });
        }
        (
            Self {
                store,
                sinks: bells.into(),
            },
            workers,
        )
    }

    /// The sinks' names, in their order.
    pub fn sinks(&self) -> impl Iterator<Item = &str> {
        self.sinks.iter().map(|(name, _)| name.as_str())
    }

    /// Puts `notification` in every sink's outbox (once per sink: an id enqueued before is not added again) and
    /// wakes the sinks' workers. A store that fails is logged: the notification is lost for that sink, the caller
    /// goes on.
    pub async fn enqueue(&self, notification: &Notification) {
        for (sink, wake) in self.sinks.iter() {
            match self.store.outbox_enqueue(sink, notification).await {
                Ok(added) => {
                    tracing::debug!(%sink, id = %notification.id, kind = %notification.kind, added, "notification queued");
                    wake.notify_one();
                }
                Err(error) => {
                    tracing::error!(%sink, id = %notification.id, %error, "a notification could not be queued");
                }
            }
        }
    }
}

/// Delivers one sink's messages (see the [module docs](self)).
#[derive(Debug)]
pub struct DeliveryWorker {
    store: Arc<dyn Store>,
    sink: Sink,
    config: OutboxConfig,
    wake: Arc<Notify>,
}

impl DeliveryWorker {
    /// The sink this worker delivers to.
    #[must_use]
    pub fn sink(&self) -> &str {
        &self.sink.name
    }

    /// Delivers until `shutdown` resolves. An attempt in flight then is dropped (its message stays first, and the
    /// next start sends it again); an answer already received is recorded before the worker stops, so a message the
    /// sink acknowledged is never sent again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let sink = self.sink.name.as_str();
        tracing::info!(%sink, kind = self.sink.notifier.sink(), "notification delivery started");
        loop {
            let due = tokio::select! {
                biased;
                () = &mut shutdown => break,
                due = self.next_due() => due,
            };
            let Some(message) = due else { continue };
            let attempt = tokio::time::timeout(
                self.config.attempt_timeout,
                self.sink.notifier.notify(&message.notification),
            );
            let result = tokio::select! {
                biased;
                () = &mut shutdown => break,
                result = attempt => result.unwrap_or_else(|_| Err(AdapterError::timeout(self.config.attempt_timeout))),
            };
            self.record(&message, result).await;
        }
        tracing::info!(%sink, "notification delivery stopped");
    }

    /// The sink's oldest waiting message once it is due; `None` after a wait (the caller asks again).
    async fn next_due(&self) -> Option<OutboxMessage> {
        let sink = self.sink.name.as_str();
        match self.store.outbox_next(sink).await {
            Ok(Some(message)) => {
                let wait = (message.next_attempt_at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                if wait.is_zero() {
                    return Some(message);
                }
                tokio::time::sleep(wait).await;
                None
            }
            // Nothing waits (or another replica's worker holds the sink's claim): sleep until a driver of this
            // process enqueues (a permit left by an earlier wake-up counts), or `idle_poll` passes.
            Ok(None) => {
                let _ = tokio::time::timeout(self.config.idle_poll, self.wake.notified()).await;
                None
            }
            Err(error) => {
                tracing::warn!(%sink, %error, "the outbox could not be read");
                tokio::time::sleep(self.config.store_retry).await;
                None
            }
        }
    }

    /// Records the outcome of one attempt at `message`.
    async fn record(&self, message: &OutboxMessage, result: Result<Delivery, AdapterError>) {
        let sink = self.sink.name.as_str();
        let now = Utc::now();
        let recorded = match result {
            Ok(delivery) => {
                tracing::info!(%sink, id = %message.notification.id, kind = %message.notification.kind, attempts = message.attempts + 1, skipped = delivery == Delivery::Skipped, "notification delivered");
                self.store.outbox_delivered(message.id, now).await
            }
            Err(error) => {
                let failure = failure(&self.config, message, &error, now);
                match failure.retry_at {
                    Some(retry_at) => {
                        tracing::warn!(%sink, id = %message.notification.id, attempts = failure.attempts, %error, %retry_at, "notification not delivered; will retry");
                    }
                    None => {
                        tracing::error!(%sink, id = %message.notification.id, attempts = failure.attempts, %error, "notification given up");
                    }
                }
                self.store.outbox_failed(message.id, failure).await
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(%sink, %error, "the outcome of a delivery could not be recorded");
            tokio::time::sleep(self.config.store_retry).await;
        }
    }
}

/// What a failed attempt at `message` means: when to try again, or to give up.
fn failure(
    config: &OutboxConfig,
    message: &OutboxMessage,
    error: &AdapterError,
    now: DateTime<Utc>,
) -> OutboxFailure {
    let attempts = message.attempts.saturating_add(1);
    let (transient, retry_after) = match error.kind() {
        ErrorKind::Timeout | ErrorKind::Unavailable => (true, None),
        ErrorKind::RateLimited { retry_after } => (true, retry_after),
        _ => (false, None),
    };
    let retry_at = (transient || attempts < config.give_up_after).then(|| {
        let delay = config.backoff.delay_after(attempts, retry_after);
        now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX)
    });
    OutboxFailure {
        attempts,
        error: error.to_string(),
        retry_at,
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use fixloop_adapters::notifier::NotificationKind;

    use super::*;

    #[test]
    fn backoff_doubles_from_its_first_wait_up_to_its_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(500),
            cap: Duration::from_secs(10),
        };
        let waits: Vec<u64> = (1..=8)
            .map(|attempts| backoff.delay(attempts).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
        assert_eq!(
            backoff.delay(0),
            Duration::from_millis(500),
            "no attempt yet waits the first wait"
        );
        assert_eq!(
            backoff.delay(u32::MAX),
            Duration::from_secs(10),
            "never overflows"
        );
    }

    #[test]
    fn a_sinks_retry_after_lengthens_the_wait_but_never_beyond_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(
            backoff.delay_after(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff.delay_after(4, Some(Duration::from_secs(2))),
            Duration::from_secs(8)
        );
        assert_eq!(
            backoff.delay_after(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn the_default_backoff_waits_one_second_then_doubles_up_to_five_minutes() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(1), Duration::from_secs(1));
        assert_eq!(backoff.delay(9), Duration::from_secs(256));
        assert_eq!(backoff.delay(10), Duration::from_secs(300));
    }

    fn message(attempts: u32) -> OutboxMessage {
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a valid time");
        OutboxMessage {
            id: 1,
            sink: "ops".to_owned(),
            notification: Notification {
                id: "n1".to_owned(),
                kind: NotificationKind::IncidentOpened,
                service: "shop".to_owned(),
                incident_id: "inc-1".to_owned(),
                summary: "opened".to_owned(),
                action_id: None,
                links: Vec::new(),
                at,
            },
            attempts,
            next_attempt_at: at,
            last_error: None,
        }
    }

    #[test]
    fn a_sink_that_is_down_is_retried_for_as_long_as_it_takes() {
        let config = OutboxConfig::default();
        let now = message(0).next_attempt_at;
        let down = AdapterError::unavailable("the sink answered 503");
        let first = failure(&config, &message(0), &down, now);
        assert_eq!(first.attempts, 1);
        assert_eq!(first.retry_at, Some(now + chrono::TimeDelta::seconds(1)));
        let late = failure(&config, &message(40), &down, now);
        assert_eq!(late.attempts, 41);
        assert_eq!(
            late.retry_at,
            Some(now + chrono::TimeDelta::seconds(300)),
            "capped, never given up"
        );
    }

    #[test]
    fn a_message_the_sink_refuses_for_good_is_given_up_after_a_few_attempts() {
        let config = OutboxConfig {
            give_up_after: 3,
            ..OutboxConfig::default()
        };
        let now = message(0).next_attempt_at;
        let refused = AdapterError::invalid_response("the sink answered 400");
        assert!(
            failure(&config, &message(0), &refused, now)
                .retry_at
                .is_some()
        );
        assert!(
            failure(&config, &message(1), &refused, now)
                .retry_at
                .is_some()
        );
        let last = failure(&config, &message(2), &refused, now);
        assert_eq!((last.attempts, last.retry_at), (3, None));
    }
}
