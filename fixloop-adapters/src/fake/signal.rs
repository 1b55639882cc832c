//! [`FakeSignalSource`]: scripted signal readings.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Link;

use super::{injected, lock, pause};
use crate::error::{AdapterError, ErrorKind};
use crate::ports::{SignalReading, SignalSource};

/// A scriptable [`SignalSource`].
#[derive(Debug)]
pub struct FakeSignalSource {
    script: Mutex<Script>,
}

#[derive(Debug)]
struct Script {
    queue: VecDeque<Result<SignalReading, AdapterError>>,
    reading: SignalReading,
    failure: Option<ErrorKind>,
    delay: Duration,
    calls: Vec<Duration>,
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
            script: Mutex::new(Script {
                queue: VecDeque::new(),
                reading,
                failure: None,
                delay: Duration::ZERO,
                calls: Vec::new(),
            }),
        }
    }

    /// Replaces the sticky reading returned when the queue is empty.
    pub fn set_reading(&self, reading: SignalReading) {
        lock(&self.script).reading = reading;
    }

    /// Queues one reading, returned by the next read that finds it first in the queue.
    pub fn push_reading(&self, reading: SignalReading) {
        lock(&self.script).queue.push_back(Ok(reading));
    }

    /// Queues one failure.
    pub fn push_error(&self, error: AdapterError) {
        lock(&self.script).queue.push_back(Err(error));
    }

    /// Makes every read (once the queue is empty) fail with `kind`, or stops failing with `None`.
    pub fn set_failure(&self, kind: Option<ErrorKind>) {
        lock(&self.script).failure = kind;
    }

    /// Delays every read by `delay` (tokio clock).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.script).delay = delay;
    }

    /// The windows of every read so far.
    #[must_use]
    pub fn calls(&self) -> Vec<Duration> {
        lock(&self.script).calls.clone()
    }
}

impl Default for FakeSignalSource {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl SignalSource for FakeSignalSource {
    async fn read(&self, window: Duration) -> Result<SignalReading, AdapterError> {
        let (answer, delay) = {
            let mut script = lock(&self.script);
            script.calls.push(window);
            let answer = match script.queue.pop_front() {
                Some(answer) => answer,
                None => match script.failure {
                    Some(kind) => Err(injected(kind)),
                    None => Ok(script.reading.clone()),
                },
            };
            (answer, script.delay)
        };
        pause(delay).await;
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
