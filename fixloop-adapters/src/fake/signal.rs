//! [`FakeSignalSource`]: scripted signal readings.

use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Link;

use super::pause;
use super::script::{Script, scripted_methods};
use crate::error::AdapterError;
use crate::ports::{SignalReading, SignalSource};

/// A scriptable [`SignalSource`].
#[derive(Debug)]
pub struct FakeSignalSource {
    /// The extra state is the sticky cycle of readings returned, one per read, when the queue is empty.
    script: Script<SignalReading, Duration, Cycle>,
}

/// Readings handed out in turn, starting over after the last one (one reading: a sticky reading).
#[derive(Debug, Clone)]
struct Cycle {
    readings: Vec<SignalReading>,
    next: usize,
}

impl Cycle {
    fn of(readings: Vec<SignalReading>) -> Self {
        Self { readings, next: 0 }
    }

    /// The next reading; an empty cycle reads as healthy.
    fn advance(&mut self) -> SignalReading {
        let Some(reading) = self.readings.get(self.next % self.readings.len().max(1)) else {
            return healthy_reading();
        };
        self.next = (self.next + 1) % self.readings.len();
        reading.clone()
    }
}

impl FakeSignalSource {
    /// A source that reads [`healthy_reading`] until told otherwise.
    #[must_use]
    pub fn new() -> Self {
        Self::with_reading(healthy_reading())
    }

    /// A source whose sticky reading is `reading`.
    #[must_use]
    pub fn with_reading(reading: SignalReading) -> Self {
        Self {
            script: Script::new(Cycle::of(vec![reading])),
        }
    }

    /// Replaces the sticky reading returned when the queue is empty.
    pub fn set_reading(&self, reading: SignalReading) {
        self.set_cycle(vec![reading]);
    }

    /// Makes reads (once the queue is empty) return `readings` in turn, starting over after the last one: a
    /// flapping service whose samples follow a fixed pattern whatever the timing. An empty list reads as
    /// [`healthy_reading`].
    pub fn set_cycle(&self, readings: Vec<SignalReading>) {
        self.script
            .update_extra(|cycle| *cycle = Cycle::of(readings));
    }

    /// Queues one reading, returned by the next read that finds it first in the queue.
    pub fn push_reading(&self, reading: SignalReading) {
        self.script.push(Ok(reading));
    }
}

scripted_methods!(
    FakeSignalSource,
    "read",
    Duration,
    "The windows of every read so far."
);

impl Default for FakeSignalSource {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl SignalSource for FakeSignalSource {
    async fn read(&self, window: Duration) -> Result<SignalReading, AdapterError> {
        let turn = self.script.turn(window);
        // The cycle advances under the lock, so concurrent reads get consecutive readings.
        let answer = turn
            .answer
            .unwrap_or_else(|| Ok(self.script.update_extra(Cycle::advance)));
        pause(turn.delay).await;
        answer
    }
}

/// A healthy reading: 0.2% errors, p95 120 ms, 500 requests, no top error.
#[must_use]
pub fn healthy_reading() -> SignalReading {
    SignalReading {
        error_rate: Some(0.002),
        p95_latency_ms: Some(120.0),
        requests: 500,
        top_error: None,
        evidence_links: vec![evidence_link()],
    }
}

/// An erroring reading: 35% errors, p95 1800 ms, 400 requests, a failing checkout as top error.
#[must_use]
pub fn erroring_reading() -> SignalReading {
    SignalReading {
        error_rate: Some(0.35),
        p95_latency_ms: Some(1800.0),
        requests: 400,
        top_error: Some("POST /checkout -> 500 payment provider timeout".to_owned()),
        evidence_links: vec![evidence_link()],
    }
}

fn evidence_link() -> Link {
    Link {
        label: "Fake metrics".to_owned(),
        url: "http://fake.invalid/metrics".to_owned(),
    }
}
