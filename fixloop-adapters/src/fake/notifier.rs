//! [`FakeNotifier`]: scripted notification deliveries (failures, delays), with every notification recorded.

use async_trait::async_trait;

use super::pause;
use super::script::{Script, scripted_methods};
use crate::error::AdapterError;
use crate::notifier::{Delivery, Notification, Notifier};

/// A scriptable [`Notifier`].
///
/// A notify answers, in this order: the next queued answer ([`push_delivery`](Self::push_delivery),
/// [`push_error`](Self::push_error)), else the sticky failure ([`set_failure`](Self::set_failure)), else
/// [`Delivery::Delivered`]. Every notify is delayed by [`set_delay`](Self::set_delay) on the tokio clock and recorded
/// ([`calls`](Self::calls)); [`delivered`](Self::delivered) lists only the ones that were delivered.
#[derive(Debug, Default)]
pub struct FakeNotifier {
    script: Script<Delivery, Notification, Vec<Notification>>,
}

impl FakeNotifier {
    /// A notifier that delivers everything until told otherwise.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues one answer for the next notify.
    pub fn push_delivery(&self, delivery: Delivery) {
        self.script.push(Ok(delivery));
    }

    /// The notifications it delivered, in order.
    #[must_use]
    pub fn delivered(&self) -> Vec<Notification> {
        self.script.update_extra(|delivered| delivered.clone())
    }
}

scripted_methods!(
    FakeNotifier,
    "notify",
    Notification,
    "Every notification it was asked to send, in order, delivered or not."
);

#[async_trait]
impl Notifier for FakeNotifier {
    fn sink(&self) -> &'static str {
        "fake"
    }

    async fn notify(&self, notification: &Notification) -> Result<Delivery, AdapterError> {
        let turn = self.script.turn(notification.clone());
        pause(turn.delay).await;
        let answer = turn.answer.unwrap_or(Ok(Delivery::Delivered));
        if matches!(answer, Ok(Delivery::Delivered)) {
            self.script
                .update_extra(|delivered| delivered.push(notification.clone()));
        }
        answer
    }
}
